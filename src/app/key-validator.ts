import { limitsIdOf } from '../domain/key-record';
import type { Clock } from '../domain/clock';
import { checkClientIp, checkCost, checkScopes, checkService } from '../domain/input-rules';
import { MAX_KEY_LENGTH, parseKey } from '../domain/key-format';
import { hashKey } from '../domain/key-hash';
import { limitsFor } from '../domain/policy-evaluation';
import { decide, type Decision, type ValidationEntry } from '../domain/validation';
import { withSpan } from '../observability/span-helpers';
import type { Limiter } from '../ports/limiter';
import { MISS, type ValidationSource } from '../ports/validation-source';
import type { PolicyResolver, Resolved } from './policy-resolver';

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
  /** Policies; without it no policy applies (used by tests of the bare pipeline). */
  policies?: PolicyResolver;
  /** Rate limits and credits; asked only for keys whose policy (or the key) has them. */
  limiter?: Limiter;
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
  private readonly policies?: PolicyResolver;
  private readonly limiter?: Limiter;

  constructor(opts: KeyValidatorOptions) {
    this.source = opts.source;
    this.clock = opts.clock;
    this.usage = opts.usage;
    this.audit = opts.audit;
    this.policies = opts.policies;
    this.limiter = opts.limiter;
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

  /**
   * Validates a checked request: parse (skipped for a key the cache has already seen), look up
   * (cache), resolve the policy (cache), decide the local rules, then ask the limiter only when
   * the key has rate limits or credits. Each step answers synchronously when it can, so a cached
   * key with local rules creates no promise.
   */
  validate(input: CheckedValidateInput): Decision | Promise<Decision> {
    const key = input.key;
    // parseKey's first checks, before hashing: long input costs nothing to reject
    if (typeof key !== 'string' || key.length > MAX_KEY_LENGTH) return MALFORMED;
    const hash = hashKey(key);
    // a hit is a key a lookup was asked for, so well-formed: no need to parse it again
    const hit = this.source.peek === undefined ? MISS : this.source.peek(hash);
    if (hit !== MISS) return this.withPolicy(hit, input);
    if (parseKey(key) === null) return MALFORMED;
    const found = this.source.lookup(hash);
    if (found instanceof Promise) return found.then((entry) => this.withPolicy(entry, input));
    return this.withPolicy(found, input);
  }

  private withPolicy(entry: ValidationEntry | undefined, input: CheckedValidateInput): Decision | Promise<Decision> {
    if (entry === undefined || this.policies === undefined || (input.service !== '' && input.service !== entry.record.service)) {
      return this.decide(entry, input, undefined);
    }
    const policy = this.policies.resolve(entry.record);
    if (policy instanceof Promise) return policy.then((p) => this.decide(entry, input, p));
    return this.decide(entry, input, policy);
  }

  private decide(entry: ValidationEntry | undefined, input: CheckedValidateInput, policy: Resolved): Decision | Promise<Decision> {
    const now = this.clock.now();
    const decision = decide(
      entry,
      { service: input.service || undefined, requiredScopes: input.requiredScopes, clientIp: input.clientIp },
      now,
      policy,
    );
    if (decision.code !== 'VALID') return this.finish(decision, input, now);
    const record = decision.record!;
    // no rate limits and no credits (the policy's or the key's own): nothing shared to ask
    if (this.limiter === undefined || (!policy?.hasLimits && record.credits === undefined)) return this.finish(decision, input, now);
    const rules = limitsFor(policy, record.credits);
    const limiter = this.limiter;
    return withSpan('keyward.limits.check', undefined, (span) => {
      span?.setAttribute('keyward.key.id', record.id);
      return limiter.check({ keyId: limitsIdOf(record), cost: input.cost, limits: rules, now });
    }).then((r) => {
      const limits = { creditsRemaining: r.creditsRemaining, rateLimits: r.rateLimits };
      if (r.allowed) return this.finish({ ...decision, limits }, input, now);
      const denied: Decision =
        r.denied?.kind === 'rate_limit'
          ? { code: 'RATE_LIMITED', reason: `rate_limit:${r.denied.name}`, record, limits }
          : { code: 'USAGE_EXCEEDED', reason: 'credits_exhausted', record, limits };
      return this.finish(denied, input, now);
    });
  }

  private finish(decision: Decision, input: CheckedValidateInput, now: number): Decision {
    if (decision.code === 'VALID') this.usage?.record(decision.record!.id, now);
    else this.audit?.recordValidation(decision, input.clientIp, now);
    return decision;
  }
}
