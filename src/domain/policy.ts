/**
 * Policies: named rule sets per service, attached to a service as its default and optionally to
 * a key. Pure data; evaluation lives in policy-evaluation.ts (local rules) and the Limiter port
 * (rate limits and credits, shared through the store).
 */
export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';
export const WEEKDAYS: readonly Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];

/** Local wall-clock hours on some days, in the policy's time zone. `end` is exclusive; `24:00` allowed. */
export interface TimeWindow {
  readonly days: readonly Weekday[];
  /** `HH:MM`, 00:00 to 23:59. */
  readonly start: string;
  /** `HH:MM`, after `start`, up to 24:00. */
  readonly end: string;
}

/** At most `limit` units per `periodMs` on average, with up to `burst` more at once. */
export interface RateLimitRule {
  /** `^[a-z0-9][a-z0-9_-]{0,31}$`, unique in the policy. */
  readonly name: string;
  readonly limit: number;
  readonly periodMs: number;
  readonly burst: number;
}

export type RefillPeriod = 'daily' | 'monthly';

/** Usage credits: a remaining count per key, decremented by each request's cost, never below zero. */
export interface CreditRule {
  /** Credits a key starts with. */
  readonly initial: number;
  /** At the start of each UTC day or month the remaining count is set back to `amount`. */
  readonly refill?: { readonly period: RefillPeriod; readonly amount: number };
}

export type RotationStrategy = 'notify' | 'auto';
export const ROTATION_STRATEGIES: readonly RotationStrategy[] = ['notify', 'auto'];

/**
 * What happens when a key reaches the policy's `maxAgeMs` (see rotation.ts):
 * - `notify`: `key.rotation_due` is emitted `noticeMs` before the maximum age, and the key
 *   expires at the maximum age unless it was rotated before;
 * - `auto`: at the maximum age the scheduler rotates the key; the old key keeps validating for
 *   `gracePeriodMs`, and the successor's secret is sealed until an admin claims it.
 */
export interface RotationRule {
  readonly strategy: RotationStrategy;
  /** `notify`: lead time of `key.rotation_due` before the maximum age (0: at the maximum age). */
  readonly noticeMs: number;
  /** `auto`: grace period given to the rotated key. Undefined: the server's default. */
  readonly gracePeriodMs?: number;
}

export interface Policy {
  /** `pol_` + ULID. */
  readonly id: string;
  readonly service: string;
  readonly name: string;
  /** Keys may only hold scopes these grant (trailing wildcards apply). Empty: any scope. */
  readonly allowedScopes: readonly string[];
  /** Compliance: keys must have an expiry... */
  readonly requireExpiry: boolean;
  /** ...at most this far after creation (ms). */
  readonly maxLifetimeMs?: number;
  /** Maximum age before rotation (ms); the rotation scheduler acts on it. */
  readonly maxAgeMs?: number;
  /** Rotation strategy at `maxAgeMs`; needs `maxAgeMs`. Undefined: the age is informational. */
  readonly rotation?: RotationRule;
  /** Client IPs must fall in one of these (IPv4 and IPv6 CIDR). Empty: any address. */
  readonly allowedCidrs: readonly string[];
  /** IANA time zone of the time windows. */
  readonly timeZone: string;
  /** Requests must fall in one of these windows. Empty: any time. */
  readonly timeWindows: readonly TimeWindow[];
  readonly rateLimits: readonly RateLimitRule[];
  readonly credits?: CreditRule;
  /** Service quota (applies when this is the service's default policy): most active keys. */
  readonly maxActiveKeys?: number;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly version: number;
}
