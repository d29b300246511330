import { compileLimits, NO_LIMITS } from '../../../src/domain/limit-rules';
import { compilePolicy, limitsFor } from '../../../src/domain/policy-evaluation';
import { makePolicy } from '../helpers/records';

// compilePolicy's matchers and effectiveCredits: test/unit/domain/validation-policy.test.ts.

const policy = makePolicy;

const rps = { name: 'rps', limit: 3, periodMs: 1000, burst: 1 };
const refill = { period: 'daily' as const, amount: 40 };

describe('compilePolicy: limits', () => {
  it('compiles the rate limits and the credit rule once, with the policy', () => {
    const p = policy({ rateLimits: [rps], credits: { initial: 100, refill } });
    expect(compilePolicy(p).limits).toEqual(compileLimits([rps], { initial: 100, refill }));
    expect(compilePolicy(policy()).limits).toEqual({ rates: [] });
  });

  it('a corrupted rule fails the compilation (policies are checked when written)', () => {
    expect(() => compilePolicy(policy({ rateLimits: [{ ...rps, limit: 0 }] }))).toThrow(RangeError);
  });
});

describe('limitsFor', () => {
  const compiled = compilePolicy(policy({ rateLimits: [rps], credits: { initial: 100, refill } }));

  it('is the policy’s compiled limits themselves when the key has no credits of its own', () => {
    expect(limitsFor(compiled, undefined)).toBe(compiled.limits);
    expect(limitsFor(undefined, undefined)).toBe(NO_LIMITS);
    expect(limitsFor(null, undefined)).toBe(NO_LIMITS);
  });

  it('with the key’s own credits: the same compiled rates, the narrower credit rule compiled', () => {
    const l = limitsFor(compiled, 30);
    expect(l.rates).toBe(compiled.limits.rates);
    expect(l.credits).toEqual({ initial: 30, refill, initialText: '30', refillAmountText: '40' });
    expect(limitsFor(compiled, 500).credits).toMatchObject({ initial: 100, initialText: '100' });
    expect(limitsFor(undefined, 7)).toEqual({ rates: [], credits: { initial: 7, initialText: '7', refillAmountText: '0' } });
    expect(() => limitsFor(undefined, -1)).toThrow(RangeError);
  });
});
