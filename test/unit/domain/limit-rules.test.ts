import fc from 'fast-check';
import { compileCredits, compileLimits, compileRule, NO_LIMITS } from '../../../src/domain/limit-rules';

// The arithmetic of compiled rules (exact T, approximation) is tested in test/unit/adapters/limits/gcra.test.ts.

describe('compileRule', () => {
  it('refuses rules it cannot compute, naming the rule', () => {
    expect(() => compileRule({ name: 'r', limit: 0, periodMs: 1000, burst: 0 })).toThrow(RangeError);
    expect(() => compileRule({ name: 'r', limit: 1.5, periodMs: 1000, burst: 0 })).toThrow(RangeError);
    expect(() => compileRule({ name: 'r', limit: 1, periodMs: 0, burst: 0 })).toThrow(RangeError);
    expect(() => compileRule({ name: 'r', limit: 1, periodMs: Infinity, burst: 0 })).toThrow(RangeError);
    expect(() => compileRule({ name: 'r', limit: 1, periodMs: 1000, burst: -1 })).toThrow(RangeError);
    expect(() => compileRule({ name: 'r', limit: 1, periodMs: 2 ** 52, burst: 0 })).toThrow(RangeError);
    expect(() => compileRule({ name: 'hourly', limit: 0, periodMs: 1000, burst: 0 })).toThrow(/rate limit hourly: limit/);
  });

  it('property: its text is name, num, den and cap in decimal, exact ones and approximated ones alike', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000_000 }),
        fc.integer({ min: 1000, max: 366 * 86_400_000 }),
        fc.integer({ min: 0, max: 1_000_000_000 }),
        (limit, periodMs, burst) => {
          const r = compileRule({ name: 'r', limit, periodMs, burst });
          expect(r.text).toEqual(['r', String(r.num), String(r.den), String(r.cap)]);
          expect(r.text.slice(1).every((t) => /^[1-9]\d*$/.test(t))).toBe(true); // never 1e+21 or 0.5
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('compileCredits', () => {
  it('keeps the rule and its constants as text; the refill amount is 0 without refill', () => {
    expect(compileCredits({ initial: 50 })).toEqual({ initial: 50, initialText: '50', refillAmountText: '0' });
    expect(compileCredits({ initial: 0, refill: { period: 'monthly', amount: 9 } })).toEqual({
      initial: 0,
      refill: { period: 'monthly', amount: 9 },
      initialText: '0',
      refillAmountText: '9',
    });
  });

  it('refuses counts that are not non-negative integers', () => {
    expect(() => compileCredits({ initial: -1 })).toThrow(RangeError);
    expect(() => compileCredits({ initial: 1.5 })).toThrow(RangeError);
    expect(() => compileCredits({ initial: 2 ** 53 })).toThrow(RangeError);
    expect(() => compileCredits({ initial: 1, refill: { period: 'daily', amount: -1 } })).toThrow(RangeError);
  });
});

describe('compileLimits', () => {
  const a = { name: 'a', limit: 10, periodMs: 1000, burst: 4 };
  const b = { name: 'b', limit: 3, periodMs: 1000, burst: 0 };

  it('compiles every rule in order, and the credit rule', () => {
    const l = compileLimits([b, a], { initial: 5 });
    expect(l.rates).toEqual([compileRule(b), compileRule(a)]);
    expect(l.credits).toEqual(compileCredits({ initial: 5 }));
    expect(compileLimits([a])).toEqual({ rates: [compileRule(a)] });
    expect('credits' in compileLimits([a])).toBe(false);
  });

  it('refuses duplicate names, an invalid rule, invalid credits', () => {
    expect(() => compileLimits([a, { ...b, name: 'a' }])).toThrow(/unique/);
    expect(() => compileLimits([a, { ...b, limit: 0 }])).toThrow(RangeError);
    expect(() => compileLimits([a], { initial: -1 })).toThrow(RangeError);
  });

  it('NO_LIMITS: nothing to check, and frozen (shared by every key without limits)', () => {
    expect(NO_LIMITS).toEqual({ rates: [] });
    expect(Object.isFrozen(NO_LIMITS) && Object.isFrozen(NO_LIMITS.rates)).toBe(true);
  });
});
