import fc from 'fast-check';
import {
  decide,
  decodeTat,
  effectiveCredits,
  encodeTat,
  gcraState,
  gcraStep,
  periodStart,
  requestTime,
  DAY_MS,
  type Tat,
} from '../../../../src/adapters/limits/gcra';
import { compileLimits, compileRule, type GcraRule } from '../../../../src/domain/limit-rules';
import type { RateLimitRule } from '../../../../src/domain/policy';

const T0 = Date.UTC(2025, 6, 14, 10, 30); // an epoch-sized time: float TATs would drift here

/** Rules with whole and fractional emission intervals (1000/3, 60000/7...). */
const ruleArb: fc.Arbitrary<RateLimitRule> = fc.record({
  name: fc.constant('r'),
  limit: fc.integer({ min: 1, max: 60 }),
  periodMs: fc.oneof(fc.constantFrom(1000, 60_000, 3_600_000, 86_400_000), fc.integer({ min: 1, max: 100_000 })),
  burst: fc.integer({ min: 0, max: 20 }),
});

/** Runs requests in the given order through one rule; returns the final TAT and units admitted. */
function run(rule: GcraRule, start: Tat | undefined, reqs: readonly { t: number; cost: number }[]) {
  let tat = start;
  let admitted = 0;
  for (const { t, cost } of reqs) {
    const next = gcraStep(rule, tat, t, cost);
    if (next) {
      tat = next;
      admitted += cost;
    }
  }
  return { tat, admitted };
}

/** Some reachable state at T0: a history of requests before it. */
const historyArb = fc.array(fc.record({ back: fc.integer({ min: 0, max: 200_000 }), cost: fc.integer({ min: 1, max: 4 }) }), {
  maxLength: 40,
});

function stateAfter(rule: GcraRule, history: readonly { back: number; cost: number }[]): Tat | undefined {
  const reqs = history.map((h) => ({ t: T0 - 1 - h.back, cost: h.cost })).sort((a, b) => a.t - b.t);
  return run(rule, undefined, reqs).tat;
}

/** Reference model in BigInt: TAT·N is an integer; allowed iff N·newTat − N·now ≤ (B + 1)·P. */
class ReferenceGcra {
  private tatN: bigint | undefined; // TAT × N
  constructor(private readonly r: RateLimitRule) {}
  step(now: number, cost: number): boolean {
    const N = BigInt(this.r.limit);
    const P = BigInt(this.r.periodMs);
    const nowN = BigInt(now) * N;
    const base = this.tatN !== undefined && this.tatN > nowN ? this.tatN : nowN;
    const next = base + BigInt(cost) * P;
    if (next - nowN > BigInt(this.r.burst + 1) * P) return false;
    this.tatN = next;
    return true;
  }
}

describe('GCRA: allowed iff newTat − now ≤ (burst + 1)·T', () => {
  it('admits burst + 1 at one instant from idle, then one more every T', () => {
    const rule = compileRule({ name: 'r', limit: 10, periodMs: 1000, burst: 4 });
    const { tat, admitted } = run(rule, undefined, Array.from({ length: 20 }, () => ({ t: T0, cost: 1 })));
    expect(admitted).toBe(5);
    expect(gcraState(rule, tat, T0)).toEqual({ name: 'r', limit: 10, remaining: 0, resetAt: T0 + 500 });
    expect(gcraStep(rule, tat, T0 + 99, 1)).toBeUndefined();
    const next = gcraStep(rule, tat, T0 + 100, 1)!;
    expect(next).toBeDefined();
    expect(gcraStep(rule, next, T0 + 100, 1)).toBeUndefined();
  });

  it('property: any window [t, t + P) admits at most limit + burst units, whatever the state and order', () => {
    fc.assert(
      fc.property(
        ruleArb,
        historyArb,
        fc.array(fc.record({ off: fc.nat(), cost: fc.integer({ min: 1, max: 3 }) }), { maxLength: 300 }),
        (r, history, window) => {
          const rule = compileRule(r);
          const start = stateAfter(rule, history);
          // times anywhere in [T0, T0 + P), in any order (concurrent sidecars do not arrive sorted)
          const reqs = window.map((w) => ({ t: T0 + (w.off % r.periodMs), cost: w.cost }));
          expect(run(rule, start, reqs).admitted).toBeLessThanOrEqual(r.limit + r.burst);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: the bound is reached: burst + 1 at t, then one every T (whole ms, never early)', () => {
    fc.assert(
      fc.property(ruleArb, (r) => {
        const T = r.periodMs / r.limit;
        fc.pre(T >= 1); // distinct whole-ms times
        // A fractional T with no burst cannot be followed exactly on a whole-ms clock: a request
        // late by a fraction of a ms loses that fraction (see the 3-per-second example below).
        fc.pre(Number.isInteger(T) || r.burst >= 1);
        const rule = compileRule(r);
        const reqs = Array.from({ length: r.burst + 1 }, () => ({ t: T0, cost: 1 }));
        for (let i = 1; i < r.limit; i++) reqs.push({ t: T0 + Math.ceil(i * T), cost: 1 });
        expect(reqs.every((q) => q.t < T0 + r.periodMs)).toBe(true);
        const { tat, admitted } = run(rule, undefined, reqs);
        expect(admitted).toBe(r.limit + r.burst);
        // ...and the next unit is due exactly at t + P: a closed window [t, t + P] holds one more
        expect(gcraStep(rule, tat, T0 + r.periodMs - 1, 1)).toBeUndefined();
        expect(gcraStep(rule, tat, T0 + r.periodMs, 1)).toBeDefined();
      }),
      { numRuns: 300 },
    );
  });

  it('property: requests exactly T apart all pass, forever, with burst 0 (T a whole number of ms)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 100_000 }), fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 1e12 }), (T, limit, offset) => {
        const rule = compileRule({ name: 'r', limit, periodMs: T * limit, burst: 0 });
        let tat: Tat | undefined;
        for (let i = 0; i < 2000; i++) {
          tat = gcraStep(rule, tat, T0 + offset + i * T, 1);
          if (!tat) throw new Error(`request ${i} refused`);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('property: requests at least T apart all pass with burst 0, whatever T', () => {
    fc.assert(
      fc.property(ruleArb, fc.array(fc.nat({ max: 10_000 }), { minLength: 1, maxLength: 500 }), (r, extra) => {
        const rule = compileRule({ ...r, burst: 0 });
        const gap = Math.ceil(r.periodMs / r.limit); // whole ms, ≥ T
        let tat: Tat | undefined;
        let t = T0;
        for (const e of extra) {
          t += gap + e;
          tat = gcraStep(rule, tat, t, 1);
          if (!tat) throw new Error(`request at ${t} refused`);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('property: requests at ⌈t0 + i·T⌉ (whole ms, never early) all pass, forever, with burst ≥ 1', () => {
    fc.assert(
      fc.property(ruleArb, fc.integer({ min: 0, max: 1e12 }), (r, offset) => {
        const rule = compileRule({ ...r, burst: Math.max(1, r.burst) });
        fc.pre(r.periodMs >= r.limit); // T ≥ 1 ms
        const t0 = T0 + offset;
        let tat: Tat | undefined;
        for (let i = 0; i < 3000; i++) {
          const t = t0 + Math.ceil((i * r.periodMs) / r.limit); // i·T rounded up, from the exact rational
          tat = gcraStep(rule, tat, t, 1);
          if (!tat) throw new Error(`request ${i} at ${t} refused`);
        }
      }),
      { numRuns: 100 },
    );
  });

  it('property: one ms early is refused when burst is 0 and T is whole', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 10_000 }), fc.integer({ min: 1, max: 50 }), (T, limit) => {
        const rule = compileRule({ name: 'r', limit, periodMs: T * limit, burst: 0 });
        const tat = gcraStep(rule, undefined, T0, 1);
        expect(gcraStep(rule, tat, T0 + T - 1, 1)).toBeUndefined();
        expect(gcraStep(rule, tat, T0 + T, 1)).toBeDefined();
      }),
    );
  });

  it('property: agrees with an exact BigInt model on random traffic', () => {
    fc.assert(
      fc.property(
        ruleArb,
        fc.array(fc.record({ dt: fc.integer({ min: 0, max: 5000 }), cost: fc.integer({ min: 1, max: 25 }) }), { maxLength: 200 }),
        (r, steps) => {
          const rule = compileRule(r);
          const ref = new ReferenceGcra(r);
          let tat: Tat | undefined;
          let t = T0;
          for (const s of steps) {
            t += s.dt;
            const next = gcraStep(rule, tat, t, s.cost);
            expect(next !== undefined).toBe(ref.step(t, s.cost));
            if (next) tat = next;
          }
        },
      ),
      { numRuns: 400 },
    );
  });

  it('property: a request passes iff its cost ≤ remaining, and then takes exactly cost units', () => {
    fc.assert(
      fc.property(ruleArb, historyArb, fc.integer({ min: 1, max: 25 }), (r, history, cost) => {
        const rule = compileRule(r);
        const tat = stateAfter(rule, history);
        const before = gcraState(rule, tat, T0);
        const next = gcraStep(rule, tat, T0, cost);
        expect(next !== undefined).toBe(cost <= before.remaining);
        if (next) {
          expect(gcraState(rule, next, T0).remaining).toBe(before.remaining - cost);
          // cost c is the same as c requests of 1 at the same instant
          const ones = run(rule, tat, Array.from({ length: cost }, () => ({ t: T0, cost: 1 })));
          expect(ones.admitted).toBe(cost);
          expect(ones.tat).toEqual(next);
        }
      }),
      { numRuns: 500 },
    );
  });

  it('property: remaining ≤ burst + 1; full (burst + 1) exactly from resetAt on; never decreasing with time', () => {
    fc.assert(
      fc.property(ruleArb, historyArb, fc.integer({ min: 0, max: 400_000 }), (r, history, wait) => {
        const rule = compileRule(r);
        const tat = stateAfter(rule, history);
        const now = gcraState(rule, tat, T0);
        expect(now.remaining).toBeGreaterThanOrEqual(0);
        expect(now.remaining).toBeLessThanOrEqual(r.burst + 1);
        expect(now.resetAt).toBeGreaterThanOrEqual(T0);
        expect(gcraState(rule, tat, now.resetAt).remaining).toBe(r.burst + 1);
        if (now.resetAt > T0) expect(gcraState(rule, tat, now.resetAt - 1).remaining).toBeLessThanOrEqual(r.burst);
        else expect(now.remaining).toBe(r.burst + 1);
        const later = gcraState(rule, tat, T0 + wait);
        expect(later.remaining).toBeGreaterThanOrEqual(now.remaining);
        expect(later.resetAt).toBe(Math.max(now.resetAt, T0 + wait));
      }),
      { numRuns: 500 },
    );
  });

  it('never admits more than burst + 1 at once, and never a request costing more', () => {
    const rule = compileRule({ name: 'r', limit: 100, periodMs: 60_000, burst: 2 });
    expect(gcraStep(rule, undefined, T0, 4)).toBeUndefined();
    expect(gcraStep(rule, undefined, T0, 3)).toBeDefined();
    expect(gcraState(rule, undefined, T0)).toEqual({ name: 'r', limit: 100, remaining: 3, resetAt: T0 });
  });

  it('keeps fractional intervals exact: 3 per second, burst 0, passes at 0, 334, 668, 1002 but not earlier', () => {
    const rule = compileRule({ name: 'r', limit: 3, periodMs: 1000, burst: 0 });
    expect(rule).toMatchObject({ num: 1000, den: 3, cap: 1000 });
    const a = gcraStep(rule, undefined, T0, 1)!;
    expect(a).toEqual({ ms: T0 + 333, frac: 1, den: 3 });
    expect(gcraState(rule, a, T0)).toMatchObject({ remaining: 0, resetAt: T0 + 334 });
    expect(gcraStep(rule, a, T0 + 333, 1)).toBeUndefined();
    const b = gcraStep(rule, a, T0 + 334, 1)!; // late by ⅔ ms: with no burst, lateness is not banked
    expect(b).toEqual({ ms: T0 + 667, frac: 1, den: 3 });
    expect(gcraStep(rule, b, T0 + 667, 1)).toBeUndefined();
    const c = gcraStep(rule, b, T0 + 668, 1)!;
    expect(gcraStep(rule, c, T0 + 1002, 1)).toBeDefined();
    // with a burst of 1 the whole-ms rounding is absorbed: 0, 334, 667, 1000, 1334...
    const r1 = compileRule({ name: 'r', limit: 3, periodMs: 1000, burst: 1 });
    let t: Tat | undefined;
    for (const at of [0, 334, 667, 1000, 1334, 1667, 2000]) {
      t = gcraStep(r1, t, T0 + at, 1);
      expect(t).toBeDefined();
    }
    expect(t).toEqual({ ms: T0 + 2334, frac: 0, den: 3 });
  });

  it('reduces the interval: 120 per minute is num 500 / den 1', () => {
    expect(compileRule({ name: 'r', limit: 120, periodMs: 60_000, burst: 9 })).toEqual({
      name: 'r',
      limit: 120,
      num: 500,
      den: 1,
      burst: 9,
      cap: 5000,
      text: ['r', '500', '1', '5000'],
    });
  });

  it('reads a TAT written under another interval rounded up to the next ms (never more permissive)', () => {
    const old = compileRule({ name: 'r', limit: 3, periodMs: 1000, burst: 0 });
    const tat = gcraStep(old, undefined, T0, 1)!; // T0 + 333⅓
    const changed = compileRule({ name: 'r', limit: 2, periodMs: 1000, burst: 0 });
    expect(gcraState(changed, tat, T0)).toMatchObject({ remaining: 0, resetAt: T0 + 334 });
    expect(gcraStep(changed, tat, T0 + 333, 1)).toBeUndefined();
    expect(gcraStep(changed, tat, T0 + 334, 1)).toEqual({ ms: T0 + 834, frac: 0, den: 1 });
  });

  it('encodes TATs as text and back', () => {
    fc.assert(
      fc.property(fc.integer({ min: -1e13, max: 1e13 }), fc.integer({ min: 1, max: 1e9 }), fc.nat(), (ms, den, f) => {
        const t = { ms, frac: f % den, den };
        expect(decodeTat(encodeTat(t))).toEqual(t);
      }),
    );
    expect(() => decodeTat('1.5 0 1')).toThrow(/invalid/);
    expect(() => decodeTat('1 3 3')).toThrow(/invalid/);
  });

  it('property: rules too large for exact arithmetic get a slightly longer T (stricter), never a shorter one', () => {
    const MAX_POLICY_COUNT = 1_000_000_000; // what policy validation allows
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: MAX_POLICY_COUNT }),
        fc.integer({ min: 1000, max: 366 * 86_400_000 }),
        fc.integer({ min: 0, max: MAX_POLICY_COUNT }),
        (limit, periodMs, burst) => {
          const r = compileRule({ name: 'r', limit, periodMs, burst });
          if (r.burst !== burst) {
            // cut only when the burst window (B + 1)·T alone exceeds 2^52 ms (~140,000 years)
            expect((burst + 1) * Math.ceil(periodMs / limit)).toBeGreaterThan(2 ** 52);
            expect((r.burst + 3) * r.num).toBeGreaterThan(Number.MAX_SAFE_INTEGER / 2);
          }
          for (const v of [r.num, r.den, r.cap]) expect(Number.isSafeInteger(v)).toBe(true);
          expect(r.cap).toBe((r.burst + 1) * r.num);
          expect(r.cap + r.den).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER / 2);
          // T' = num/den ≥ P/N, and by less than one part in a million
          const lhs = BigInt(r.num) * BigInt(limit);
          const rhs = BigInt(periodMs) * BigInt(r.den);
          expect(lhs >= rhs).toBe(true);
          expect(Number(lhs - rhs) / Number(rhs)).toBeLessThan(1e-6);
          // and it still works: a request of burst + 1 units passes at once, then nothing
          const t = gcraStep(r, undefined, T0, r.burst + 1)!;
          expect(t).toBeDefined();
          expect(gcraStep(r, t, T0, 1)).toBeUndefined();
          expect(gcraState(r, t, T0).remaining).toBe(0);
        },
      ),
      { numRuns: 1000 },
    );
    expect(compileRule({ name: 'r', limit: 999_999_937, periodMs: 366 * 86_400_000, burst: 1e9 }).den).toBeLessThan(999_999_937);
  });

  it('cuts only absurd bursts (a burst window beyond 2^52 ms), and rounds a fractional period up', () => {
    const r = compileRule({ name: 'r', limit: 1, periodMs: 2 ** 40, burst: 2 ** 20 });
    expect(r).toMatchObject({ num: 2 ** 40, den: 1 });
    expect(r.burst).toBeLessThan(2 ** 20);
    expect(r.cap).toBeLessThanOrEqual(Number.MAX_SAFE_INTEGER / 2);
    expect(compileRule({ name: 'r', limit: 2, periodMs: 1000.2, burst: 0 })).toMatchObject({ num: 1001, den: 2 });
  });

  it('refuses requests it cannot compute (rules: limit-rules.test.ts), and floors the time to whole ms', () => {
    const base = { keyId: 'k', limits: compileLimits([]), now: T0 };
    expect(() => requestTime({ ...base, cost: 0 })).toThrow(RangeError);
    expect(() => requestTime({ ...base, cost: 1.5 })).toThrow(RangeError);
    expect(() => requestTime({ ...base, cost: 1, now: NaN })).toThrow(RangeError);
    expect(() => requestTime({ ...base, cost: 1, keyId: '' })).toThrow(RangeError);
    expect(requestTime({ ...base, cost: 1, now: T0 + 0.9 })).toBe(T0);
  });
});

describe('credits', () => {
  const at = (iso: string): number => Date.parse(iso);

  it('periodStart: UTC day and month, across 31/30-day months, February and leap years', () => {
    expect(periodStart(at('2025-03-15T13:14:15.678Z'), 'daily')).toBe(at('2025-03-15T00:00:00Z'));
    expect(periodStart(at('2025-03-15T23:59:59.999Z'), 'daily')).toBe(at('2025-03-15T00:00:00Z'));
    expect(periodStart(at('2025-03-16T00:00:00Z'), 'daily')).toBe(at('2025-03-16T00:00:00Z'));
    expect(periodStart(at('2025-01-31T23:59:59.999Z'), 'monthly')).toBe(at('2025-01-01T00:00:00Z'));
    expect(periodStart(at('2025-02-28T23:59:59.999Z'), 'monthly')).toBe(at('2025-02-01T00:00:00Z'));
    expect(periodStart(at('2025-03-01T00:00:00Z'), 'monthly')).toBe(at('2025-03-01T00:00:00Z'));
    expect(periodStart(at('2024-02-29T12:00:00Z'), 'monthly')).toBe(at('2024-02-01T00:00:00Z'));
    expect(periodStart(at('2025-04-30T23:59:59.999Z'), 'monthly')).toBe(at('2025-04-01T00:00:00Z'));
    expect(periodStart(at('2025-12-31T23:59:59.999Z'), 'monthly')).toBe(at('2025-12-01T00:00:00Z'));
    expect(periodStart(at('2026-01-01T00:00:00Z'), 'monthly')).toBe(at('2026-01-01T00:00:00Z'));
  });

  it('property: periodStart ≤ now < the next period start, and is stable within the period', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: at('2100-01-01T00:00:00Z') }), fc.constantFrom('daily' as const, 'monthly' as const), (now, period) => {
        const s = periodStart(now, period);
        expect(s).toBeLessThanOrEqual(now);
        expect(periodStart(s, period)).toBe(s);
        const d = new Date(s);
        expect(d.getUTCHours() + d.getUTCMinutes() + d.getUTCSeconds() + d.getUTCMilliseconds()).toBe(0);
        if (period === 'daily') expect(now - s).toBeLessThan(DAY_MS);
        else {
          expect(d.getUTCDate()).toBe(1);
          const next = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 1);
          expect(now).toBeLessThan(next);
        }
      }),
    );
  });

  it('initialises, refills once per period, and keeps what was set within the period', () => {
    const rule = { initial: 10, refill: { period: 'daily' as const, amount: 4 } };
    const t = at('2025-05-10T08:00:00Z');
    expect(effectiveCredits(undefined, rule, t)).toEqual({ remaining: 10, setAt: t });
    const stored = { remaining: 2, setAt: t };
    expect(effectiveCredits(stored, rule, at('2025-05-10T23:59:59.999Z'))).toBe(stored);
    expect(effectiveCredits(stored, rule, at('2025-05-11T00:00:00Z'))).toEqual({ remaining: 4, setAt: at('2025-05-11T00:00:00Z') });
    expect(effectiveCredits(stored, { initial: 10 }, at('2030-01-01T00:00:00Z'))).toBe(stored);
  });

  it('decide: rate limits first, then credits; a refusal writes nothing', () => {
    const limits = compileLimits([{ name: 'a', limit: 10, periodMs: 1000, burst: 9 }], { initial: 5 });
    const ok = decide(limits, 5, T0, [undefined], undefined);
    expect(ok.result).toEqual({
      allowed: true,
      rateLimits: [{ name: 'a', limit: 10, remaining: 5, resetAt: T0 + 500 }],
      creditsRemaining: 0,
    });
    expect(ok.write).toEqual({ tats: [{ ms: T0 + 500, frac: 0, den: 1 }], credits: { remaining: 0, setAt: T0 } });
    const short = decide(limits, 6, T0, [undefined], undefined);
    expect(short).toEqual({
      result: {
        allowed: false,
        denied: { kind: 'credits' },
        rateLimits: [{ name: 'a', limit: 10, remaining: 10, resetAt: T0 }],
        creditsRemaining: 5,
      },
    });
    const limited = decide(limits, 11, T0, [undefined], { remaining: 100, setAt: 0 });
    expect(limited.write).toBeUndefined();
    expect(limited.result.denied).toEqual({ kind: 'rate_limit', name: 'a' });
  });
});
