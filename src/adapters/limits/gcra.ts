import type { CompiledLimits, GcraRule } from '../../domain/limit-rules';
import type { CreditRule, RefillPeriod } from '../../domain/policy';
import type { LimitCheck, LimitResult, RateLimitState } from '../../ports/limiter';

/*
 * The pure arithmetic of keyward's limits, shared by MemoryLimiter and (mirrored line for line in
 * Lua) RedisLimiter, so that both decide alike. The rules come compiled (num, den, cap below) once
 * per policy version by src/domain/limit-rules.ts; a check adds only its cost and time.
 *
 * RATE LIMITS: GCRA (generic cell rate algorithm)
 *
 *   A rule allows `limit` (N) units per `periodMs` (P) with `burst` (B). Emission interval
 *   T = P / N; tolerance τ = B·T. The state of a limit is its TAT (theoretical arrival time).
 *   A request of cost c at time `now`:
 *
 *       base   = max(TAT, now)                    (an absent state is TAT = now: idle)
 *       newTat = base + c·T
 *       allowed  iff  newTat − now ≤ τ + T  = (B + 1)·T
 *
 *   and only an allowed request stores newTat. So:
 *   - from idle, B + 1 units pass at one instant (a request costing more than B + 1 never passes);
 *   - requests at least T apart all pass, forever (see below for T not a whole number of ms);
 *   - THE BOUND: in any window [t, t + P) at most N + B units pass, whatever the state at t and
 *     in whatever order the requests arrive. Proof: every admission at a time ≥ t raises TAT to at
 *     least max(TAT, its time) + c·T ≥ t + c·T and later ones add on top, so after k units admitted
 *     in the window the TAT is ≥ t + k·T; the last admission, at time s < t + P, had
 *     newTat − s ≤ (B + 1)·T, hence t + k·T < t + P + (B + 1)·T, k < N + B + 1, k ≤ N + B.
 *     The bound is reached: B + 1 at t, then one at each ⌈t + i·T⌉ for i = 1..N − 1 (with a
 *     whole T, or B ≥ 1). A closed window [t, t + P] can hold N + B + 1: the next unit is due
 *     exactly at t + P.
 *   - remaining = ⌊((B + 1)·T − (base − now)) / T⌋ ≥ 0: units that would pass right now;
 *     resetAt = max(⌈TAT⌉, now): from then on the limit is full again (remaining = B + 1).
 *
 *   EXACT ARITHMETIC. T is rarely a whole number of ms (1000/3), and floating-point TATs drift:
 *   near 2025 epoch values a double moves in steps of 1/4096 ms, so a hammered 3/s limit gains
 *   about 1 ms of allowance every 12,000 requests, and requests exactly T apart can be refused
 *   by one rounding step. So time is whole ms (`now` is
 *   floored, a fractional period rounded up) and T is kept as the reduced fraction num/den
 *   (num = P/g, den = N/g, g = gcd(P, N)); a TAT is `ms + frac/den` with integers ms and
 *   0 ≤ frac < den. Every quantity is an integer below 2^53, exact in JS numbers and Lua doubles
 *   alike. Only when (B + 1)·num would not fit (huge bursts with long, oddly divided periods) is
 *   T rounded up to a nearby fraction that fits: stricter by at most (B + 1)/2^52, so the bound
 *   holds. A stored TAT written with another den (the rule changed) is rounded up to the next
 *   whole ms (never more permissive).
 *
 *   Whole ms cost one thing: with burst 0 and a fractional T, a request late by a fraction of a
 *   ms loses that fraction (3/s with burst 0 passes at 0, 334, 668..., not 0, 334, 667, 1000);
 *   a burst ≥ 1 absorbs it (requests at ⌈t0 + i·T⌉ all pass). Requests at least T apart always
 *   pass.
 *
 * CREDITS
 *
 *   A count per key: `remaining` and `setAt` (when the count was last set: initialised, refilled
 *   or set by an admin). Absent: the key starts with `rule.initial` (set now). With a refill rule,
 *   when `setAt` is before the start of the current UTC day/month, the count is back to
 *   `refill.amount` (set now) before the request is weighed. A request costing more than what
 *   remains is refused and consumes nothing; the count never goes below zero.
 */

export const DAY_MS = 86_400_000;

/** A theoretical arrival time: ms + frac/den, with 0 ≤ frac < den. */
export interface Tat {
  readonly ms: number;
  readonly frac: number;
  readonly den: number;
}

/** Whole ms: the unit of time of the limits. */
export function toMs(now: number): number {
  if (!Number.isFinite(now)) throw new RangeError(`now must be a finite number of ms, got ${now}`);
  return Math.floor(now);
}

/** The TAT in the rule's den (another den: rounded up to the next whole ms). */
function normalise(rule: GcraRule, tat: Tat): Tat {
  if (tat.den === rule.den) return tat;
  return { ms: tat.frac > 0 ? tat.ms + 1 : tat.ms, frac: 0, den: rule.den };
}

/** max(TAT, now) as a TAT in the rule's den. */
function base(rule: GcraRule, tat: Tat | undefined, now: number): Tat {
  if (tat === undefined) return { ms: now, frac: 0, den: rule.den };
  const t = normalise(rule, tat);
  return t.ms >= now ? t : { ms: now, frac: 0, den: rule.den };
}

/** (t − now) in 1/den ms, t ≥ now. */
const ahead = (t: Tat, now: number): number => (t.ms - now) * t.den + t.frac;

/**
 * One rule's verdict on a request of `cost` units at `now` (whole ms): the TAT to store if the
 * request is admitted, or undefined if this rule refuses it.
 */
export function gcraStep(rule: GcraRule, tat: Tat | undefined, now: number, cost: number): Tat | undefined {
  // more than B + 1 units can never pass (and the arithmetic below stays small)
  if (cost * rule.num > rule.cap) return undefined;
  const b = base(rule, tat, now);
  const a = b.frac + cost * rule.num;
  const frac = a % rule.den;
  const next: Tat = { ms: b.ms + (a - frac) / rule.den, frac, den: rule.den };
  return ahead(next, now) <= rule.cap ? next : undefined;
}

/** Units that would pass at `now`, and when the limit is full again. */
export function gcraState(rule: GcraRule, tat: Tat | undefined, now: number): RateLimitState {
  const b = base(rule, tat, now);
  const x = rule.cap - ahead(b, now);
  const remaining = x < 0 ? 0 : (x - (x % rule.num)) / rule.num;
  const resetAt = b.frac > 0 ? b.ms + 1 : b.ms;
  return { name: rule.name, limit: rule.limit, remaining, resetAt };
}

/** `ms frac den`: how Redis stores a TAT (the Lua script writes the same text). */
export function encodeTat(t: Tat): string {
  return `${t.ms} ${t.frac} ${t.den}`;
}

export function decodeTat(s: string): Tat {
  const m = /^(-?\d+) (\d+) (\d+)$/.exec(s);
  if (!m) throw new Error(`invalid rate-limit state ${JSON.stringify(s)}`);
  const t = { ms: Number(m[1]), frac: Number(m[2]), den: Number(m[3]) };
  if (t.den < 1 || t.frac >= t.den) throw new Error(`invalid rate-limit state ${JSON.stringify(s)}`);
  return t;
}

/** Start of the UTC day or month containing `now`. */
export function periodStart(now: number, period: RefillPeriod): number {
  if (period === 'daily') return Math.floor(now / DAY_MS) * DAY_MS;
  const d = new Date(now);
  return Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
}

/** A key's credits as stored. */
export interface CreditState {
  readonly remaining: number;
  /** When `remaining` was last set (initialised, refilled, or by setCredits), ms. */
  readonly setAt: number;
}

export function checkCreditCount(remaining: number): void {
  if (!Number.isSafeInteger(remaining) || remaining < 0) throw new RangeError(`credits must be a non-negative integer, got ${remaining}`);
}

/** The credits in force at `now`: initialised if absent, refilled if set before this period. */
export function effectiveCredits(stored: CreditState | undefined, rule: CreditRule, now: number): CreditState {
  if (stored === undefined) return { remaining: rule.initial, setAt: now };
  if (rule.refill && stored.setAt < periodStart(now, rule.refill.period)) {
    return { remaining: rule.refill.amount, setAt: now };
  }
  return stored;
}

/**
 * Checks what a request adds to its compiled limits (key id, cost, time): RangeError if invalid.
 * Returns the time in whole ms.
 */
export function requestTime(c: LimitCheck): number {
  if (typeof c.keyId !== 'string' || c.keyId === '') throw new RangeError('keyId must be a non-empty string');
  if (!Number.isSafeInteger(c.cost) || c.cost < 1) throw new RangeError(`cost must be a positive integer, got ${c.cost}`);
  return toMs(c.now);
}

export interface Decision {
  readonly result: LimitResult;
  /** What to store when allowed: the new TAT of every rule, and the credits (if any). */
  readonly write?: { readonly tats: readonly Tat[]; readonly credits?: CreditState };
}

/**
 * The whole check of `cost` units at `now` (whole ms), all or nothing: every rule in order, then
 * the credits. `tats[i]` is the stored state of `limits.rates[i]`. Writes nothing (returns no
 * `write`) unless everything passes.
 */
export function decide(
  limits: CompiledLimits,
  cost: number,
  now: number,
  tats: readonly (Tat | undefined)[],
  stored: CreditState | undefined,
): Decision {
  const rules = limits.rates;
  const next = rules.map((r, i) => gcraStep(r, tats[i], now, cost));
  const refusedBy = next.findIndex((t) => t === undefined);
  const credits = limits.credits ? effectiveCredits(stored, limits.credits, now) : undefined;
  const creditsShort = credits !== undefined && credits.remaining < cost;
  if (refusedBy >= 0 || creditsShort) {
    return {
      result: {
        allowed: false,
        denied: refusedBy >= 0 ? { kind: 'rate_limit', name: rules[refusedBy].name } : { kind: 'credits' },
        rateLimits: rules.map((r, i) => gcraState(r, tats[i], now)),
        ...(credits && { creditsRemaining: credits.remaining }),
      },
    };
  }
  const newTats = next as Tat[];
  const newCredits = credits && { remaining: credits.remaining - cost, setAt: credits.setAt };
  return {
    result: {
      allowed: true,
      rateLimits: rules.map((r, i) => gcraState(r, newTats[i], now)),
      ...(newCredits && { creditsRemaining: newCredits.remaining }),
    },
    write: { tats: newTats, ...(newCredits && { credits: newCredits }) },
  };
}

/** When every limit of these TATs is full again (the state can be dropped from then on). */
export function fullAgainAt(tats: readonly Tat[]): number {
  let at = -Infinity;
  for (const t of tats) at = Math.max(at, t.frac > 0 ? t.ms + 1 : t.ms);
  return at;
}
