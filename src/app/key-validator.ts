import type { Clock } from '../domain/clock';
import { checkClientIp, checkCost, checkScopes, checkService } from '../domain/input-rules';
import { parseKey } from '../domain/key-format';
import { hashKey } from '../domain/key-hash';
import { decide, type Decision, type ValidationEntry } from '../domain/validation';
import type { ValidationSource } from '../ports/validation-source';

export interface ValidateInput {
  key: string;
  /** Empty: any service. */
  service: string;
  requiredScopes: readonly string[];
  clientIp: string;
  cost: number;
}

export interface CheckedValidateInput extends ValidateInput {
  /** Normalised cost (0 becomes 1). */
  cost: number;
}

const MALFORMED: Decision = Object.freeze({ code: 'MALFORMED', reason: 'bad_format_or_checksum' });

/** Told about every successful validation (usage tracking); must be cheap: it is on the hot path. */
export interface UsageRecorder {
  record(keyId: string, now: number): void;
}

/** Told about outcomes that belong in the audit trail; must be cheap: it is on the hot path. */
export interface ValidationAuditor {
  recordValidation(decision: Decision, clientIp: string, now: number): void;
}

export interface KeyValidatorOptions {
  source: ValidationSource;
  clock: Clock;
  usage?: UsageRecorder;
  audit?: ValidationAuditor;
}

/**
 * The validation use case: parse (offline rejection of malformed keys), hash, look up, decide.
 * Outcomes are `Decision`s; only a bad request field (`InvalidArgumentError`) or an unreachable
 * store (`StoreUnavailableError`) is thrown.
 */
export class KeyValidator {
  private readonly source: ValidationSource;
  private readonly clock: Clock;
  private readonly usage?: UsageRecorder;
  private readonly audit?: ValidationAuditor;

  constructor(opts: KeyValidatorOptions) {
    this.source = opts.source;
    this.clock = opts.clock;
    this.usage = opts.usage;
    this.audit = opts.audit;
  }

  /**
   * Checks the request fields other than the key (a bad key is an outcome, not an error).
   * `field` prefixes the field names, e.g. `requests[3].` in a batch.
   */
  static checkRequest(input: ValidateInput, field = ''): CheckedValidateInput {
    if (input.service !== '') checkService(`${field}service`, input.service);
    if (input.requiredScopes.length > 0) checkScopes(`${field}required_scopes`, input.requiredScopes);
    checkClientIp(`${field}client_ip`, input.clientIp);
    return { ...input, cost: checkCost(`${field}cost`, input.cost) };
  }

  /** Validates a checked request. */
  validate(input: CheckedValidateInput): Decision | Promise<Decision> {
    const parsed = parseKey(input.key);
    if (parsed === null) return MALFORMED;
    const found = this.source.lookup(hashKey(input.key));
    if (found instanceof Promise) return found.then((entry) => this.decide(entry, input));
    return this.decide(found, input);
  }

  private decide(entry: ValidationEntry | undefined, input: CheckedValidateInput): Decision {
    const now = this.clock.now();
    const decision = decide(entry, { service: input.service || undefined, requiredScopes: input.requiredScopes }, now);
    if (decision.code === 'VALID') this.usage?.record(decision.record!.id, now);
    else this.audit?.recordValidation(decision, input.clientIp, now);
    return decision;
  }
}
