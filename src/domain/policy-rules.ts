import { checkCidrs } from './cidr';
import { FailedPreconditionError, InvalidArgumentError } from './errors';
import { checkScopes, checkService, checkText, LIMITS } from './input-rules';
import type { CreditRule, Policy, RateLimitRule, RefillPeriod, RotationRule, TimeWindow } from './policy';
import { MAX_GRACE_PERIOD_MS } from './rotation';
import { ScopeSet } from './scopes';
import { checkTimeWindows, checkTimeZone } from './time-windows';

/** The settable fields of a policy, as a create or update request gives them. */
export interface PolicyFields {
  service: string;
  name: string;
  allowedScopes: readonly string[];
  requireExpiry: boolean;
  maxLifetimeMs?: number;
  maxAgeMs?: number;
  allowedCidrs: readonly string[];
  timeZone: string;
  timeWindows: readonly TimeWindow[];
  rateLimits: readonly RateLimitRule[];
  credits?: CreditRule;
  maxActiveKeys: number;
  rotation?: RotationRule;
}

const LIMIT_NAME = /^[a-z0-9][a-z0-9_-]{0,31}$/;
const MAX_RATE_LIMITS = 8;
const MAX_COUNT = 1_000_000_000;
const MIN_PERIOD_MS = 1_000;
const MAX_PERIOD_MS = 366 * 86_400_000;
const MIN_AGE_MS = 60_000;

/** Checks every field of a policy; field names are proto paths under `prefix` (e.g. `policy.`). */
export function checkPolicyFields(f: PolicyFields, prefix = 'policy.'): PolicyFields {
  const field = (name: string) => `${prefix}${name}`;
  const out: PolicyFields = {
    service: checkService(field('service'), f.service),
    name: checkText(field('name'), f.name, LIMITS.nameLength),
    allowedScopes: checkScopes(field('allowed_scopes'), f.allowedScopes),
    requireExpiry: f.requireExpiry,
    allowedCidrs: checkCidrs(field('allowed_cidrs'), f.allowedCidrs),
    timeZone: checkTimeZone(field('time_zone'), f.timeZone || 'UTC'),
    timeWindows: checkTimeWindows(field('time_windows'), f.timeWindows),
    rateLimits: checkRateLimits(field('rate_limits'), f.rateLimits),
    maxActiveKeys: checkCount(field('max_active_keys'), f.maxActiveKeys, 0),
  };
  if (f.maxLifetimeMs !== undefined) out.maxLifetimeMs = checkAge(field('max_lifetime'), f.maxLifetimeMs);
  if (f.maxAgeMs !== undefined) out.maxAgeMs = checkAge(field('max_age'), f.maxAgeMs);
  if (f.credits !== undefined) out.credits = checkCredits(field('credits'), f.credits);
  if (f.rotation !== undefined) out.rotation = checkRotation(field('rotation'), f.rotation, out.maxAgeMs);
  return out;
}

/** Shortest grace period of an `auto` rotation: its sealed secret is claimable only within it. */
const MIN_AUTO_GRACE_MS = 1_000;

function checkRotation(field: string, r: RotationRule, maxAgeMs: number | undefined): RotationRule {
  if (r.strategy !== 'notify' && r.strategy !== 'auto') throw new InvalidArgumentError(`${field}.strategy`, 'must be NOTIFY or AUTO');
  if (maxAgeMs === undefined) throw new InvalidArgumentError(field, 'needs policy.max_age: the strategy acts at the maximum key age');
  if (!Number.isSafeInteger(r.noticeMs) || r.noticeMs < 0 || r.noticeMs >= maxAgeMs) {
    throw new InvalidArgumentError(`${field}.notice`, 'must be at least 0 and less than max_age');
  }
  if (r.strategy === 'auto' && r.noticeMs !== 0) throw new InvalidArgumentError(`${field}.notice`, 'applies to the NOTIFY strategy only');
  const out: { -readonly [K in keyof RotationRule]: RotationRule[K] } = { strategy: r.strategy, noticeMs: r.noticeMs };
  if (r.gracePeriodMs !== undefined) {
    // A zero grace period with AUTO would seal a secret that expires as it is sealed: never claimable.
    const min = r.strategy === 'auto' ? MIN_AUTO_GRACE_MS : 0;
    if (!Number.isSafeInteger(r.gracePeriodMs) || r.gracePeriodMs < min || r.gracePeriodMs > MAX_GRACE_PERIOD_MS) {
      throw new InvalidArgumentError(`${field}.grace_period`, r.strategy === 'auto' ? 'must be from 1s to 90d with AUTO' : 'must be from 0 to 90d');
    }
    out.gracePeriodMs = r.gracePeriodMs;
  }
  return out;
}

function checkCount(field: string, n: number, min: number): number {
  if (!Number.isSafeInteger(n) || n < min || n > MAX_COUNT) {
    throw new InvalidArgumentError(field, `must be a whole number from ${min} to ${MAX_COUNT}`);
  }
  return n;
}

function checkAge(field: string, ms: number): number {
  if (!Number.isFinite(ms) || ms < MIN_AGE_MS) throw new InvalidArgumentError(field, 'must be at least 1 minute');
  return ms;
}

function checkRateLimits(field: string, limits: readonly RateLimitRule[]): RateLimitRule[] {
  if (limits.length > MAX_RATE_LIMITS) throw new InvalidArgumentError(field, `at most ${MAX_RATE_LIMITS} rate limits`);
  const names = new Set<string>();
  return limits.map((l, i) => {
    const f = `${field}[${i}]`;
    if (!LIMIT_NAME.test(l.name)) throw new InvalidArgumentError(`${f}.name`, 'must match ^[a-z0-9][a-z0-9_-]{0,31}$');
    if (names.has(l.name)) throw new InvalidArgumentError(`${f}.name`, `duplicate rate limit name ${l.name}`);
    names.add(l.name);
    if (!Number.isFinite(l.periodMs) || l.periodMs < MIN_PERIOD_MS || l.periodMs > MAX_PERIOD_MS) {
      throw new InvalidArgumentError(`${f}.period`, 'must be from 1s to 366d');
    }
    return { name: l.name, limit: checkCount(`${f}.limit`, l.limit, 1), periodMs: l.periodMs, burst: checkCount(`${f}.burst`, l.burst, 0) };
  });
}

function checkCredits(field: string, c: CreditRule): CreditRule {
  const initial = checkCount(`${field}.initial`, c.initial, 0);
  if (c.refill === undefined) return { initial };
  const period: RefillPeriod = c.refill.period;
  if (period !== 'daily' && period !== 'monthly') throw new InvalidArgumentError(`${field}.refill.period`, 'must be daily or monthly');
  return { initial, refill: { period, amount: checkCount(`${field}.refill.amount`, c.refill.amount, 1) } };
}

/** True when every key scope lies within the policy's allowed scopes (wildcards only under wildcards). */
export function scopeWithin(scope: string, allowed: ScopeSet, allowedList: readonly string[]): boolean {
  if (!scope.endsWith('*')) return allowed.grants(scope);
  const p = scope.slice(0, -1);
  return allowedList.some((a) => a.endsWith('*') && p.startsWith(a.slice(0, -1)));
}

/** The key-level settings a policy governs. */
export interface KeyTerms {
  readonly scopes: readonly string[];
  readonly createdAt: number;
  readonly expiresAt?: number;
  readonly credits?: number;
}

/**
 * Compliance of a key with its policy, at create and update: a key narrows, never widens, what
 * the policy allows. A breach is `FailedPreconditionError` naming the rule.
 */
export function checkKeyCompliance(policy: Policy, key: KeyTerms): void {
  if (policy.allowedScopes.length > 0) {
    const allowed = new ScopeSet(policy.allowedScopes);
    const outside = key.scopes.filter((s) => !scopeWithin(s, allowed, policy.allowedScopes));
    if (outside.length > 0) {
      throw new FailedPreconditionError(`rule allowed_scopes of policy ${policy.id}: scopes ${outside.join(', ')} are not allowed`);
    }
  }
  if (policy.requireExpiry && key.expiresAt === undefined) {
    throw new FailedPreconditionError(`rule require_expiry of policy ${policy.id}: the key needs an expire_time`);
  }
  if (policy.maxLifetimeMs !== undefined && key.expiresAt !== undefined && key.expiresAt - key.createdAt > policy.maxLifetimeMs) {
    throw new FailedPreconditionError(
      `rule max_lifetime of policy ${policy.id}: expire_time must be at most ${Math.floor(policy.maxLifetimeMs / 1000)}s after creation`,
    );
  }
  if (policy.credits !== undefined && key.credits !== undefined && key.credits > policy.credits.initial) {
    throw new FailedPreconditionError(`rule credits of policy ${policy.id}: a key may start with at most ${policy.credits.initial} credits`);
  }
}
