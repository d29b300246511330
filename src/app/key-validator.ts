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

export interface KeyValidatorOptions {
  source: ValidationSource;
  clock: Clock;
}

/**
 * The validation use case: parse (offline rejection of malformed keys), hash, look up, decide.
 * Outcomes are `Decision`s; only a bad request field (`InvalidArgumentError`) or an unreachable
 * store (`StoreUnavailableError`) is thrown.
 */
export class KeyValidator {
  private readonly source: ValidationSource;
  private readonly clock: Clock;

  constructor(opts: KeyValidatorOptions) {
    this.source = opts.source;
    this.clock = opts.clock;
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
    return decide(entry, { service: input.service || undefined, requiredScopes: input.requiredScopes }, this.clock.now());
  }
}
