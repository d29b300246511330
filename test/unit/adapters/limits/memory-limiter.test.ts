import { MemoryLimiter } from '../../../../src/adapters/limits/memory-limiter';
import { compileLimits } from '../../../../src/domain/limit-rules';
import type { CreditRule, RateLimitRule } from '../../../../src/domain/policy';
import type { LimitCheck } from '../../../../src/ports/limiter';

const T0 = Date.UTC(2025, 0, 1);
const perSecond = { name: 's', limit: 10, periodMs: 1000, burst: 1 };
const perHour = { name: 'h', limit: 100, periodMs: 3_600_000, burst: 0 };
const check = (
  keyId: string,
  now: number,
  { cost = 1, rateLimits = [perSecond], credits }: { cost?: number; rateLimits?: RateLimitRule[]; credits?: CreditRule } = {},
): LimitCheck => ({ keyId, cost, limits: compileLimits(rateLimits, credits), now });

describe('MemoryLimiter (specific to memory; the shared behaviour is in limiter.contract.ts)', () => {
  it('drops a key’s rate-limit state once its slowest limit is full again', async () => {
    const l = new MemoryLimiter();
    await l.check(check('k', T0, { rateLimits: [perSecond, perHour] }));
    expect(l.size.rates).toBe(1);
    // full again at T0 + 36 s (the hourly limit); a check of the per-second limit alone keeps it
    await l.check(check('k', T0 + 30_000));
    expect(l.size.rates).toBe(1);
    const later = await l.check(check('k', T0 + 36_000, { rateLimits: [perSecond, perHour] }));
    expect(later.rateLimits.map((r) => r.remaining)).toEqual([1, 0]); // dropped, then this check
    expect(l.size.rates).toBe(1);
    await l.check(check('k', T0 + 36_000 + 36_000, { rateLimits: [], credits: { initial: 1 } }));
    expect(l.size.rates).toBe(1); // not touched without rate limits...
    await l.check(check('k', T0 + 72_000));
    expect((await l.check(check('k', T0 + 72_000))).rateLimits[0].remaining).toBe(0);
  });

  it('treats the dropped state exactly like the stored one', async () => {
    const kept = new MemoryLimiter();
    const results: unknown[][] = [[], []];
    for (const [i, l] of [kept, new MemoryLimiter()].entries()) {
      await l.check(check('k', T0, { cost: 2, rateLimits: [perSecond, perHour] }));
      if (i === 1) await l.forget('k'); // at T0 + 72 s everything was full anyway
      for (const t of [72_000, 72_000, 72_050, 72_100, 72_100]) {
        results[i].push(await l.check(check('k', T0 + t, { rateLimits: [perSecond, perHour] })));
      }
    }
    expect(results[0]).toEqual(results[1]);
  });

  it('bounds the keys it holds, least recently used first', async () => {
    const l = new MemoryLimiter({ maxKeys: 2 });
    for (const k of ['a', 'b', 'c']) {
      await l.check(check(k, T0, { credits: { initial: 5 } }));
    }
    expect(l.size).toEqual({ rates: 2, credits: 2 });
    expect(await l.credits('a', { initial: 5 }, T0)).toBe(5); // evicted: starts over
    expect(await l.credits('c', { initial: 5 }, T0)).toBe(4);
    expect(() => new MemoryLimiter({ maxKeys: 0 })).toThrow(RangeError);
  });

  it('close() empties it', async () => {
    const l = new MemoryLimiter();
    await l.check(check('k', T0, { credits: { initial: 5 } }));
    await l.close();
    expect(l.size).toEqual({ rates: 0, credits: 0 });
  });
});
