import type { CompiledLimits } from '../domain/limit-rules';
import type { CreditRule } from '../domain/policy';

/** One request against a key's shared limits. */
export interface LimitCheck {
  readonly keyId: string;
  /** Units this request consumes from every rate limit and from the credits (≥ 1). */
  readonly cost: number;
  /** The key's rate limits and credit rule, compiled once per policy version (compileLimits). */
  readonly limits: CompiledLimits;
  /** Milliseconds since the epoch (the caller's clock; fake in tests). */
  readonly now: number;
}

export interface RateLimitState {
  readonly name: string;
  readonly limit: number;
  /** Units that could still be admitted right now. */
  readonly remaining: number;
  /** When the limit is fully replenished (ms since the epoch). */
  readonly resetAt: number;
}

export interface LimitResult {
  readonly allowed: boolean;
  /** Why not, when not allowed: the first rate limit exhausted, or the credits. */
  readonly denied?: { readonly kind: 'rate_limit'; readonly name: string } | { readonly kind: 'credits' };
  /** The state of every rate limit after this request. */
  readonly rateLimits: readonly RateLimitState[];
  /** Credits left after this request; undefined when the key has no credit rule. */
  readonly creditsRemaining?: number;
}

/**
 * Rate limits (GCRA) and usage credits, shared by every sidecar. A check is all-or-nothing: a
 * request denied by any limit consumes nothing from the others. Redis answers a check in one
 * round trip (one Lua script); the memory limiter has the same semantics locally.
 */
export interface Limiter {
  check(c: LimitCheck): Promise<LimitResult>;
  /** Credits left for a key (initialising them from `rule` if never used); undefined without a rule. */
  credits(keyId: string, rule: CreditRule | undefined, now: number): Promise<number | undefined>;
  /** Sets a key's remaining credits (admin top-up or reset). */
  setCredits(keyId: string, remaining: number, now: number): Promise<void>;
  /** Forgets a key's limit state (the key was deleted). */
  forget(keyId: string): Promise<void>;
  close(): Promise<void>;
}
