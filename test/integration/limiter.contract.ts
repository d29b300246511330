import { randomUUID } from 'node:crypto';
import { compileLimits } from '../../src/domain/limit-rules';
import type { CreditRule, RateLimitRule } from '../../src/domain/policy';
import type { LimitCheck, LimitResult, Limiter } from '../../src/ports/limiter';

/**
 * The behaviour every Limiter must have, run against each implementation (limiter.test.ts:
 * MemoryLimiter and RedisLimiter on a real redis-server). Checks go through the port only.
 *
 * The GCRA bound (src/adapters/limits/gcra.ts): a limit of N per P with burst B admits B + 1 units
 * at one instant from idle, then one more every T = P / N; at most N + B in any window [t, t + P).
 */
export interface LimiterUnderTest {
  limiter: Limiter;
  cleanup(): Promise<void>;
}

/** A check with its rules as a policy holds them. */
export interface RawCheck {
  readonly keyId: string;
  readonly cost: number;
  readonly rateLimits: readonly RateLimitRule[];
  readonly credits?: CreditRule;
  readonly now: number;
}

/** The check a validator sends: the rules compiled (as compilePolicy does once per version). */
export function toCheck(c: RawCheck): LimitCheck {
  return { keyId: c.keyId, cost: c.cost, limits: compileLimits(c.rateLimits, c.credits), now: c.now };
}

const at = (iso: string): number => Date.parse(iso);
const T0 = at('2025-07-14T10:30:00Z');

export function describeLimiterContract(name: string, make: () => Promise<LimiterUnderTest>): void {
  describe(`Limiter contract: ${name}`, () => {
    let sut: LimiterUnderTest;
    let limiter: Limiter;
    let keyId: string;

    beforeEach(async () => {
      sut = await make();
      limiter = sut.limiter;
      keyId = `key_${randomUUID()}`;
    });

    afterEach(async () => {
      await sut.cleanup();
    });

    const check = (now: number, rateLimits: RateLimitRule[], extra: Partial<RawCheck> = {}): Promise<LimitResult> =>
      limiter.check(toCheck({ keyId, cost: 1, rateLimits, now, ...extra }));

    /** `n` checks at one instant, one after the other; how many were allowed. */
    async function hammer(n: number, now: number, rateLimits: RateLimitRule[], extra: Partial<RawCheck> = {}) {
      const results: LimitResult[] = [];
      for (let i = 0; i < n; i++) results.push(await check(now, rateLimits, extra));
      return { allowed: results.filter((r) => r.allowed).length, results };
    }

    describe('rate limits', () => {
      const tenPerSecond: RateLimitRule = { name: 'per-second', limit: 10, periodMs: 1000, burst: 4 };

      it('admits burst + 1 at one instant from idle, then one more every T', async () => {
        const { allowed, results } = await hammer(20, T0, [tenPerSecond]);
        expect(allowed).toBe(5);
        expect(results.slice(0, 5).every((r) => r.allowed)).toBe(true);
        expect(results[5]).toEqual({
          allowed: false,
          denied: { kind: 'rate_limit', name: 'per-second' },
          rateLimits: [{ name: 'per-second', limit: 10, remaining: 0, resetAt: T0 + 500 }],
        });
        expect((await check(T0 + 99, [tenPerSecond])).allowed).toBe(false);
        expect((await hammer(5, T0 + 100, [tenPerSecond])).allowed).toBe(1); // T = 100 ms
        expect((await hammer(5, T0 + 350, [tenPerSecond])).allowed).toBe(2);
      });

      it('admits exactly limit + burst in a window [t, t + P): burst + 1 at t, one every T after', async () => {
        let allowed = (await hammer(10, T0, [tenPerSecond])).allowed;
        for (let t = T0 + 1; t < T0 + 1000; t += 7) allowed += (await hammer(2, t, [tenPerSecond])).allowed;
        expect(allowed).toBe(10 + 4);
        // the next unit is due at t + P exactly
        expect((await check(T0 + 1000, [tenPerSecond])).allowed).toBe(true);
      });

      it('reports remaining and resetAt after each request', async () => {
        const first = await check(T0, [tenPerSecond]);
        expect(first).toEqual({
          allowed: true,
          rateLimits: [{ name: 'per-second', limit: 10, remaining: 4, resetAt: T0 + 100 }],
        });
        const r = await check(T0 + 50, [tenPerSecond], { cost: 3 });
        expect(r.rateLimits).toEqual([{ name: 'per-second', limit: 10, remaining: 1, resetAt: T0 + 400 }]);
        // replenished while idle: 130 ms later, one more unit (and a bit) is back
        expect((await check(T0 + 180, [tenPerSecond], { cost: 2 })).rateLimits[0]).toMatchObject({
          remaining: 0,
          resetAt: T0 + 600,
        });
        // full again at resetAt
        expect((await check(T0 + 600, [tenPerSecond], { cost: 5 })).rateLimits[0]).toMatchObject({
          remaining: 0,
          resetAt: T0 + 1100,
        });
      });

      it('keeps a fractional emission interval exact (3 per second)', async () => {
        const three: RateLimitRule = { name: 'three', limit: 3, periodMs: 1000, burst: 0 };
        expect((await check(T0, [three])).rateLimits[0].resetAt).toBe(T0 + 334);
        expect((await check(T0 + 333, [three])).allowed).toBe(false);
        expect((await check(T0 + 334, [three])).allowed).toBe(true);
        const withBurst: RateLimitRule = { ...three, name: 'three-b', burst: 1 };
        let n = 0;
        for (const t of [0, 334, 667, 1000, 1334, 1667, 2000]) if ((await check(T0 + t, [withBurst])).allowed) n++;
        expect(n).toBe(7);
      });

      it('reads the state of an edited limit (same name, new interval) rounded up to the next ms', async () => {
        const three: RateLimitRule = { name: 'edited', limit: 3, periodMs: 1000, burst: 0 };
        await check(T0, [three]); // TAT T0 + 333⅓
        const two: RateLimitRule = { ...three, limit: 2 }; // T = 500: TAT read as T0 + 334
        expect(await check(T0 + 333, [two])).toMatchObject({
          allowed: false,
          rateLimits: [{ name: 'edited', limit: 2, remaining: 0, resetAt: T0 + 334 }],
        });
        expect(await check(T0 + 334, [two])).toMatchObject({
          allowed: true,
          rateLimits: [{ name: 'edited', limit: 2, remaining: 0, resetAt: T0 + 834 }],
        });
      });

      it('takes `cost` units, and never admits a request costing more than burst + 1', async () => {
        const r3 = await check(T0, [tenPerSecond], { cost: 3 });
        expect(r3.allowed).toBe(true);
        expect(r3.rateLimits[0].remaining).toBe(2);
        expect((await check(T0, [tenPerSecond], { cost: 3 })).allowed).toBe(false);
        expect((await check(T0, [tenPerSecond], { cost: 2 })).allowed).toBe(true);
        expect((await check(T0, [tenPerSecond], { cost: 1 })).allowed).toBe(false);
        const idle = await limiter.check(toCheck({ keyId: `key_${randomUUID()}`, cost: 6, rateLimits: [tenPerSecond], now: T0 }));
        expect(idle).toMatchObject({ allowed: false, denied: { kind: 'rate_limit', name: 'per-second' } });
        expect(idle.rateLimits[0].remaining).toBe(5);
      });

      it('with several limits: the tightest denies, and a denied request consumes none of them', async () => {
        const loose: RateLimitRule = { name: 'loose', limit: 10, periodMs: 1000, burst: 9 };
        const tight: RateLimitRule = { name: 'tight', limit: 3, periodMs: 1000, burst: 2 };
        const daily: RateLimitRule = { name: 'daily', limit: 1000, periodMs: 86_400_000, burst: 99 };
        const limits = [loose, tight, daily];
        const { allowed, results } = await hammer(6, T0, limits);
        expect(allowed).toBe(3);
        expect(results[3].denied).toEqual({ kind: 'rate_limit', name: 'tight' });
        expect(results[5].rateLimits.map((s) => [s.name, s.remaining])).toEqual([
          ['loose', 7],
          ['tight', 0],
          ['daily', 97],
        ]);
        // the first limit in order is reported when several refuse
        expect((await hammer(7, T0, [loose])).allowed).toBe(7);
        expect((await check(T0, [tight, loose])).denied).toEqual({ kind: 'rate_limit', name: 'tight' });
        expect((await check(T0, [loose, tight])).denied).toEqual({ kind: 'rate_limit', name: 'loose' });
        // limits are independent per name: another set of limits on the same key has its own state
        expect((await check(T0, [{ ...tight, name: 'other' }])).allowed).toBe(true);
      });

      it('keeps keys apart', async () => {
        await hammer(5, T0, [tenPerSecond]);
        expect((await check(T0, [tenPerSecond])).allowed).toBe(false);
        const other = await limiter.check(toCheck({ keyId: `key_${randomUUID()}`, cost: 1, rateLimits: [tenPerSecond], now: T0 }));
        expect(other.allowed).toBe(true);
      });

      it('allows a check with no limits and no credits', async () => {
        expect(await check(T0, [])).toEqual({ allowed: true, rateLimits: [] });
      });

      it('refuses invalid requests with RangeError (invalid rules never compile: limit-rules.test.ts)', async () => {
        await expect(check(T0, [tenPerSecond], { cost: 0 })).rejects.toBeInstanceOf(RangeError);
        await expect(check(T0, [tenPerSecond], { cost: 1.5 })).rejects.toBeInstanceOf(RangeError);
        await expect(check(T0, [tenPerSecond], { now: NaN })).rejects.toBeInstanceOf(RangeError);
        await expect(check(T0, [tenPerSecond], { keyId: '' })).rejects.toBeInstanceOf(RangeError);
        await expect(check(T0, [], { cost: 0 })).rejects.toBeInstanceOf(RangeError);
        await expect(limiter.setCredits(keyId, -1, T0)).rejects.toBeInstanceOf(RangeError);
        await expect(limiter.credits(keyId, { initial: -1 }, T0)).rejects.toBeInstanceOf(RangeError);
      });
    });

    describe('credits', () => {
      const ten: CreditRule = { initial: 10 };

      it('decrement by cost, deny at zero without going negative', async () => {
        const seen: (number | undefined)[] = [];
        for (const cost of [3, 3, 3]) {
          const r = await check(T0, [], { cost, credits: ten });
          expect(r.allowed).toBe(true);
          seen.push(r.creditsRemaining);
        }
        expect(seen).toEqual([7, 4, 1]);
        // costing more than remains: denied, consumes nothing
        expect(await check(T0, [], { cost: 3, credits: ten })).toEqual({
          allowed: false,
          denied: { kind: 'credits' },
          rateLimits: [],
          creditsRemaining: 1,
        });
        expect((await check(T0, [], { cost: 1, credits: ten })).creditsRemaining).toBe(0);
        const empty = await check(T0, [], { cost: 1, credits: ten });
        expect(empty).toMatchObject({ allowed: false, denied: { kind: 'credits' }, creditsRemaining: 0 });
        expect(await limiter.credits(keyId, ten, T0)).toBe(0);
      });

      it('a rate-limit denial consumes no credits, and a credit denial consumes no rate limit', async () => {
        const one: RateLimitRule = { name: 'one', limit: 1, periodMs: 60_000, burst: 1 };
        expect((await check(T0, [one], { credits: { initial: 3 } })).creditsRemaining).toBe(2);
        expect((await check(T0, [one], { credits: { initial: 3 } })).creditsRemaining).toBe(1);
        const limited = await check(T0, [one], { credits: { initial: 3 } });
        expect(limited).toMatchObject({ allowed: false, denied: { kind: 'rate_limit', name: 'one' }, creditsRemaining: 1 });
        expect(await limiter.credits(keyId, { initial: 3 }, T0)).toBe(1);

        const other = `key_${randomUUID()}`;
        const poor = await limiter.check(toCheck({ keyId: other, cost: 2, rateLimits: [one], credits: { initial: 1 }, now: T0 }));
        expect(poor).toEqual({
          allowed: false,
          denied: { kind: 'credits' },
          rateLimits: [{ name: 'one', limit: 1, remaining: 2, resetAt: T0 }],
          creditsRemaining: 1,
        });
        const ok = await limiter.check(toCheck({ keyId: other, cost: 1, rateLimits: [one], credits: { initial: 1 }, now: T0 }));
        expect(ok.rateLimits[0].remaining).toBe(1);
      });

      it('credits() initialises lazily from the rule, once; undefined without a rule', async () => {
        expect(await limiter.credits(keyId, undefined, T0)).toBeUndefined();
        expect(await limiter.credits(keyId, ten, T0)).toBe(10);
        expect(await limiter.credits(keyId, { initial: 99 }, T0)).toBe(10); // already initialised
        expect((await check(T0, [], { cost: 4, credits: { initial: 99 } })).creditsRemaining).toBe(6);
        expect((await check(T0, [])).creditsRemaining).toBeUndefined();
      });

      it('setCredits overwrites the remaining count', async () => {
        await check(T0, [], { cost: 4, credits: ten });
        await limiter.setCredits(keyId, 100, T0 + 1);
        expect(await limiter.credits(keyId, ten, T0 + 2)).toBe(100);
        expect((await check(T0 + 3, [], { cost: 5, credits: ten })).creditsRemaining).toBe(95);
        await limiter.setCredits(keyId, 0, T0 + 4);
        expect((await check(T0 + 5, [], { credits: ten })).allowed).toBe(false);
        // on a key never used: the rule's initial no longer applies
        const fresh = `key_${randomUUID()}`;
        await limiter.setCredits(fresh, 7, T0);
        expect(await limiter.credits(fresh, ten, T0)).toBe(7);
      });

      const daily: CreditRule = { initial: 5, refill: { period: 'daily', amount: 3 } };
      const monthly: CreditRule = { initial: 5, refill: { period: 'monthly', amount: 3 } };

      it('refills daily at 00:00 UTC, not before', async () => {
        expect((await check(at('2025-01-31T00:00:00Z'), [], { cost: 5, credits: daily })).creditsRemaining).toBe(0);
        expect((await check(at('2025-01-31T23:59:59.999Z'), [], { credits: daily })).allowed).toBe(false);
        expect(await limiter.credits(keyId, daily, at('2025-01-31T23:59:59.999Z'))).toBe(0);
        const r = await check(at('2025-02-01T00:00:00Z'), [], { cost: 2, credits: daily });
        expect(r).toMatchObject({ allowed: true, creditsRemaining: 1 }); // refilled to 3, then 2 taken
        expect((await check(at('2025-02-01T22:00:00Z'), [], { cost: 1, credits: daily })).creditsRemaining).toBe(0);
        // several days idle: one refill to `amount`, nothing accumulates
        expect(await limiter.credits(keyId, daily, at('2025-02-05T10:00:00Z'))).toBe(3);
      });

      it.each([
        ['31 → 30 days', '2025-03-31T23:59:59.999Z', '2025-04-01T00:00:00Z', '2025-04-30T23:59:59.999Z', '2025-05-01T00:00:00Z'],
        ['January → February', '2025-01-31T12:00:00Z', '2025-02-01T00:00:00Z', '2025-02-28T23:59:59.999Z', '2025-03-01T00:00:00Z'],
        ['leap February', '2024-02-01T00:00:00Z', '2024-02-29T23:59:59.999Z', '2024-02-29T23:59:59.999Z', '2024-03-01T00:00:00Z'],
        ['December → January', '2025-11-30T23:00:00Z', '2025-12-01T00:00:00Z', '2025-12-31T23:59:59.999Z', '2026-01-01T00:00:00Z'],
      ])('refills monthly on the 1st, 00:00 UTC (%s)', async (_, first, second, lastInstant, nextMonth) => {
        // first use: initial (5), all taken
        expect((await check(at(first), [], { cost: 5, credits: monthly })).creditsRemaining).toBe(0);
        // `second` is in the next month, except in the leap case (same month: no refill)
        const sameMonth = first.slice(0, 7) === second.slice(0, 7);
        const r2 = await check(at(second), [], { cost: 1, credits: monthly });
        expect(r2).toMatchObject(sameMonth ? { allowed: false, creditsRemaining: 0 } : { allowed: true, creditsRemaining: 2 });
        // the rest of that month: no more refills
        const before = await limiter.credits(keyId, monthly, at(lastInstant));
        expect(before).toBe(sameMonth ? 0 : 2);
        expect(await limiter.credits(keyId, monthly, at(nextMonth))).toBe(3);
      });

      it('a refill does not wipe credits set by an admin earlier in the same period', async () => {
        await check(at('2025-06-10T08:00:00Z'), [], { cost: 5, credits: daily });
        // the next day, before any check: the admin tops up
        await limiter.setCredits(keyId, 50, at('2025-06-11T09:00:00Z'));
        expect(await limiter.credits(keyId, daily, at('2025-06-11T10:00:00Z'))).toBe(50);
        expect((await check(at('2025-06-11T11:00:00Z'), [], { credits: daily })).creditsRemaining).toBe(49);
        // ...and the next boundary refills as usual
        expect(await limiter.credits(keyId, daily, at('2025-06-12T00:00:00Z'))).toBe(3);
      });
    });

    it('forget drops rate-limit state and credits', async () => {
      const one: RateLimitRule = { name: 'one', limit: 1, periodMs: 60_000, burst: 0 };
      await check(T0, [one], { cost: 1, credits: { initial: 2 } });
      expect((await check(T0, [one], { credits: { initial: 2 } })).allowed).toBe(false);
      await limiter.forget(keyId);
      const again = await check(T0, [one], { credits: { initial: 2 } });
      expect(again).toEqual({
        allowed: true,
        rateLimits: [{ name: 'one', limit: 1, remaining: 0, resetAt: T0 + 60_000 }],
        creditsRemaining: 1,
      });
      await limiter.forget(`key_${randomUUID()}`); // unknown: fine
    });
  });
}
