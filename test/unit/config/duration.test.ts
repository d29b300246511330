import fc from 'fast-check';
import { parseDuration } from '../../../src/config/duration';

describe('parseDuration', () => {
  it.each([
    ['250ms', 250],
    ['10s', 10_000],
    ['5m', 300_000],
    ['1h', 3_600_000],
    ['2d', 172_800_000],
    ['1500', 1500],
    ['0', 0],
    ['0s', 0],
    ['1.5s', 1500],
    ['0.25m', 15_000],
    ['0.4ms', 0],
    ['0.5', 1],
    ['007s', 7000],
    [' 10s ', 10_000],
    ['\t3m\n', 180_000],
  ])('parses %j as %d ms', (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(['', ' ', 's', 'ms', '10 s', '-1s', '+1s', '1e3', '10S', '10Ms', '10sec', '10w', '1.s', '.5s', '1,5s', '1h30m', '0x10', 'NaN', 'Infinity', '10s10'])(
    'rejects %j',
    (text) => {
      expect(parseDuration(text)).toBeUndefined();
    },
  );

  it('property: <n><unit> is n times the unit', () => {
    const units = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 100_000 }), fc.constantFrom(...(Object.keys(units) as (keyof typeof units)[])), (n, unit) => {
        expect(parseDuration(`${n}${unit}`)).toBe(n * units[unit]);
      }),
      { numRuns: 300 },
    );
  });

  it('property: never throws and returns undefined or a non-negative integer', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 12 }), (text) => {
        const ms = parseDuration(text);
        if (ms !== undefined) {
          expect(Number.isInteger(ms)).toBe(true);
          expect(ms).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 500 },
    );
  });
});
