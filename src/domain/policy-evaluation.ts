import { CidrSet } from './cidr';
import { compileCredits, compileLimits, NO_LIMITS, type CompiledLimits } from './limit-rules';
import type { CreditRule, Policy } from './policy';
import { ScopeSet } from './scopes';
import { TimeWindowSet } from './time-windows';

/**
 * A policy prepared for the hot path: matchers built once per policy version, so a validation
 * does set lookups and a few comparisons, no parsing.
 */
export interface CompiledPolicy {
  readonly policy: Policy;
  /** undefined: any scope allowed. */
  readonly allowedScopes?: ScopeSet;
  /** undefined: any address. */
  readonly cidrs?: CidrSet;
  /** undefined: any time. */
  readonly windows?: TimeWindowSet;
  /** Rate limits or credits apply: the limiter must be asked. */
  readonly hasLimits: boolean;
  /** The rate limits and credit rule, compiled for the limiter. */
  readonly limits: CompiledLimits;
  /** Set for a `notify` rotation policy: keys not rotated expire this long after creation. */
  readonly maxAgeExpiryMs?: number;
}

export function compilePolicy(policy: Policy): CompiledPolicy {
  const limits = compileLimits(policy.rateLimits, policy.credits);
  return {
    policy,
    allowedScopes: policy.allowedScopes.length > 0 ? new ScopeSet(policy.allowedScopes) : undefined,
    cidrs: policy.allowedCidrs.length > 0 ? new CidrSet(policy.allowedCidrs) : undefined,
    windows: policy.timeWindows.length > 0 ? new TimeWindowSet(policy.timeZone, policy.timeWindows) : undefined,
    hasLimits: limits.rates.length > 0 || limits.credits !== undefined,
    limits,
    maxAgeExpiryMs: policy.rotation?.strategy === 'notify' ? policy.maxAgeMs : undefined,
  };
}

/** The credit rule of a key: the policy's, with the key's own starting credits when it narrows them. */
export function effectiveCredits(policy: Policy | undefined, keyCredits: number | undefined): CreditRule | undefined {
  if (keyCredits === undefined) return policy?.credits;
  if (policy?.credits === undefined) return { initial: keyCredits };
  return { ...policy.credits, initial: Math.min(keyCredits, policy.credits.initial) };
}

/**
 * What the limiter checks for a key: its policy's compiled limits, as they are unless the key
 * has starting credits of its own (then only the credit rule is compiled again).
 */
export function limitsFor(policy: CompiledPolicy | undefined | null, keyCredits: number | undefined): CompiledLimits {
  const limits = policy?.limits ?? NO_LIMITS;
  if (keyCredits === undefined) return limits;
  return { rates: limits.rates, credits: compileCredits(effectiveCredits(policy?.policy, keyCredits)!) };
}
