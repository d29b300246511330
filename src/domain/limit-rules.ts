import type { CreditRule, RateLimitRule } from './policy';

/*
 * A key's rate limits and credit rule, validated and compiled once per policy version
 * (compilePolicy) into what a Limiter needs besides the request: a check then only does the
 * arithmetic of the request's cost and time. The arithmetic, and why T is an exact fraction, is
 * explained in src/adapters/limits/gcra.ts.
 */

/** A rate-limit rule in exact integer form. */
export interface GcraRule {
  readonly name: string;
  readonly limit: number;
  /** T = num / den ms, reduced. */
  readonly num: number;
  readonly den: number;
  /** The burst in units (B); cut only for absurd bursts (see `approximate`). */
  readonly burst: number;
  /** (B + 1)·T in 1/den ms: the largest allowed newTat − now. */
  readonly cap: number;
  /** name, num, den and cap as decimal text, made once: the CHECK script's arguments. */
  readonly text: readonly [name: string, num: string, den: string, cap: string];
}

/** A valid credit rule, with its constants as decimal text for the Redis scripts. */
export interface CompiledCredits extends CreditRule {
  readonly initialText: string;
  /** The refill amount; '0' without refill. */
  readonly refillAmountText: string;
}

export interface CompiledLimits {
  /** In the policy's order: the first refusing rule is the one reported. */
  readonly rates: readonly GcraRule[];
  /** The key's credit rule, if it has one. */
  readonly credits?: CompiledCredits;
}

export const NO_LIMITS: CompiledLimits = Object.freeze({ rates: Object.freeze([]) });

/** Throws RangeError naming the bad rule: policies are checked when written, so this means a corrupted one. */
export function compileLimits(rateLimits: readonly RateLimitRule[], credits?: CreditRule): CompiledLimits {
  const rates = rateLimits.map(compileRule);
  if (new Set(rates.map((r) => r.name)).size !== rates.length) throw new RangeError('rate limit names must be unique');
  return credits ? { rates, credits: compileCredits(credits) } : { rates };
}

const isCount = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;

export function compileCredits(rule: CreditRule): CompiledCredits {
  if (!isCount(rule.initial)) throw new RangeError(`credits: initial must be a non-negative integer, got ${rule.initial}`);
  if (rule.refill && !isCount(rule.refill.amount)) {
    throw new RangeError(`credits: refill amount must be a non-negative integer, got ${rule.refill.amount}`);
  }
  return {
    initial: rule.initial,
    ...(rule.refill && { refill: { period: rule.refill.period, amount: rule.refill.amount } }),
    initialText: String(rule.initial),
    refillAmountText: String(rule.refill?.amount ?? 0),
  };
}

function gcd(a: number, b: number): number {
  while (b !== 0) [a, b] = [b, a % b];
  return a;
}

/** Largest cap (in 1/den ms) kept exact: sums with a cost and a den stay below 2^53. */
const MAX_CAP = Math.floor(Number.MAX_SAFE_INTEGER / 2);

function gcraRule(name: string, limit: number, num: number, den: number, burst: number): GcraRule {
  const cap = (burst + 1) * num;
  return { name, limit, num, den, burst, cap, text: [name, String(num), String(den), String(cap)] };
}

export function compileRule(rule: RateLimitRule): GcraRule {
  const { name, limit, burst } = rule;
  if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`rate limit ${name}: limit must be a positive integer, got ${limit}`);
  if (!Number.isFinite(rule.periodMs) || rule.periodMs <= 0 || rule.periodMs > MAX_CAP) {
    throw new RangeError(`rate limit ${name}: periodMs must be a positive number of ms, got ${rule.periodMs}`);
  }
  if (!isCount(burst)) throw new RangeError(`rate limit ${name}: burst must be a non-negative integer, got ${burst}`);
  const periodMs = Math.ceil(rule.periodMs); // whole ms (a fraction would only make it stricter)
  const g = gcd(periodMs, limit);
  const num = periodMs / g;
  const den = limit / g;
  if ((burst + 1) * num <= MAX_CAP - den) return gcraRule(name, limit, num, den, burst);
  return approximate(name, limit, burst, num, den);
}

/**
 * T = num/den with (B + 1)·num too large for exact doubles (a burst in the hundreds of thousands
 * with a long period and a limit sharing few factors with it). T is rounded UP to the closest
 * fraction with a smaller den that fits: stricter by less than (B + 1) / 2^52 (one part in 4.5
 * million for a burst of 10^9), so the bound still holds. If even den = 1 does not fit (a burst
 * window (B + 1)·T beyond 2^52 ms, i.e. ~140,000 years), the burst is cut to what fits.
 */
function approximate(name: string, limit: number, burst: number, num: number, den: number): GcraRule {
  const maxNum = BigInt(Math.floor((MAX_CAP - den) / (burst + 1)));
  const d = (maxNum * BigInt(den)) / BigInt(num); // largest den' with ⌈num·den'/den⌉ ≤ maxNum
  if (d >= 1n) {
    const n = (BigInt(num) * d + BigInt(den) - 1n) / BigInt(den);
    const g = gcd(Number(n), Number(d));
    return gcraRule(name, limit, Number(n) / g, Number(d) / g, burst);
  }
  const whole = Number((BigInt(num) + BigInt(den) - 1n) / BigInt(den));
  const cut = Math.floor((MAX_CAP - 1) / whole) - 1;
  if (cut < 0) throw new RangeError(`rate limit ${name}: period / limit is too large`);
  return gcraRule(name, limit, whole, 1, cut);
}
