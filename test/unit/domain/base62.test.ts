import fc from 'fast-check';
import { BASE62_ALPHABET, encodeBase62, isBase62, randomBase62 } from '../../../src/domain/base62';
import { constantBytes, cyclingBytes, seededBytes, sequenceBytes } from '../helpers/bytes';

/** Independent reference decoder. */
function decode(s: string): number {
  let v = 0;
  for (const c of s) {
    const d = BASE62_ALPHABET.indexOf(c);
    if (d < 0) throw new Error(`not base62: ${c}`);
    v = v * 62 + d;
  }
  return v;
}

describe('BASE62_ALPHABET', () => {
  it('has 62 distinct characters: digits, then upper case, then lower case', () => {
    expect(BASE62_ALPHABET).toHaveLength(62);
    expect(new Set(BASE62_ALPHABET).size).toBe(62);
    expect(BASE62_ALPHABET).toBe(
      '0123456789' + 'ABCDEFGHIJKLMNOPQRSTUVWXYZ' + 'abcdefghijklmnopqrstuvwxyz',
    );
  });

  it('is in ascending code-unit order (so equal-length strings sort numerically)', () => {
    const sorted = [...BASE62_ALPHABET].sort().join('');
    expect(sorted).toBe(BASE62_ALPHABET);
  });
});

describe('isBase62', () => {
  it('accepts every alphabet character and the empty string', () => {
    for (const c of BASE62_ALPHABET) expect(isBase62(c)).toBe(true);
    expect(isBase62(BASE62_ALPHABET)).toBe(true);
    expect(isBase62('')).toBe(true);
  });

  it.each(['_', '-', '+', '/', '=', ' ', '.', '\n', '\u0000', '\u007f', 'é', 'ß', 'İ', '\u0100', '０', '😀', '\ud800'])(
    'rejects %j alone and inside otherwise valid text',
    (c) => {
      expect(isBase62(c)).toBe(false);
      expect(isBase62(`abc${c}XYZ`)).toBe(false);
      expect(isBase62(`${c}abc`)).toBe(false);
      expect(isBase62(`abc${c}`)).toBe(false);
    },
  );

  it('agrees with /^[0-9A-Za-z]*$/ on arbitrary strings', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (s) => {
        expect(isBase62(s)).toBe(/^[0-9A-Za-z]*$/.test(s));
      }),
      { numRuns: 500 },
    );
  });

  it('accepts any string over the alphabet', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom(...BASE62_ALPHABET), maxLength: 60 }), (s) => {
        expect(isBase62(s)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });
});

describe('encodeBase62', () => {
  it.each([
    [0, 1, '0'],
    [0, 6, '000000'],
    [9, 1, '9'],
    [10, 1, 'A'],
    [35, 1, 'Z'],
    [36, 1, 'a'],
    [61, 1, 'z'],
    [62, 1, '10'],
    [62, 4, '0010'],
    [3843, 2, 'zz'],
    [3844, 2, '100'],
    [0xffffffff, 6, '4gfFC3'],
  ])('encodes %d with width %d as %s', (value, width, expected) => {
    expect(encodeBase62(value, width)).toBe(expected);
  });

  it('never truncates a value wider than width', () => {
    expect(encodeBase62(62 ** 3, 2)).toBe('1000');
  });

  it('round-trips through a reference decoder for any safe integer', () => {
    fc.assert(
      fc.property(fc.maxSafeNat(), fc.integer({ min: 0, max: 12 }), (v, width) => {
        const s = encodeBase62(v, width);
        expect(isBase62(s)).toBe(true);
        expect(s.length).toBeGreaterThanOrEqual(Math.max(width, 1));
        expect(decode(s)).toBe(v);
        // Only padding zeros are added.
        if (s.length > 1) expect(s.length === width || s[0] !== '0').toBe(true);
      }),
      { numRuns: 500 },
    );
  });

  it('preserves numeric order for equal widths', () => {
    fc.assert(
      fc.property(fc.nat({ max: 0xffffffff }), fc.nat({ max: 0xffffffff }), (a, b) => {
        const ea = encodeBase62(a, 6);
        const eb = encodeBase62(b, 6);
        expect(ea.length).toBe(6);
        expect(ea < eb).toBe(a < b);
        expect(ea === eb).toBe(a === b);
      }),
      { numRuns: 500 },
    );
  });
});

describe('randomBase62', () => {
  it('returns exactly `length` alphabet characters', () => {
    for (const length of [0, 1, 6, 33, 100, 1000]) {
      const s = randomBase62(length, seededBytes(length + 1));
      expect(s).toHaveLength(length);
      expect(isBase62(s)).toBe(true);
    }
  });

  it('maps byte b < 248 to alphabet[b % 62]', () => {
    const bytes = Array.from({ length: 248 }, (_, i) => i);
    const s = randomBase62(248, constantBytes(bytes));
    expect(s).toBe(BASE62_ALPHABET.repeat(4));
  });

  it('skips bytes >= 248 (rejection sampling)', () => {
    const s = randomBase62(3, sequenceBytes([248, 249, 250, 251, 252, 253, 254, 255, 1, 255, 62, 247]));
    // 1 -> '1', 62 -> '0', 247 -> 247 % 62 = 61 -> 'z'
    expect(s).toBe('10z');
  });

  it('asks for more bytes when a batch runs out', () => {
    const calls: number[] = [];
    const s = randomBase62(10, (n) => {
      calls.push(n);
      return Uint8Array.of(calls.length === 1 ? 255 : 5); // one byte per call; the first is rejected
    });
    expect(s).toBe('5'.repeat(10));
    expect(calls).toHaveLength(11);
    expect(calls.every((n) => n > 0)).toBe(true);
  });

  it('requests at least as many bytes as characters still needed', () => {
    const src = cyclingBytes();
    randomBase62(33, src.bytes);
    expect(src.requests[0]).toBeGreaterThanOrEqual(33);
  });

  it('is exactly uniform over a full byte cycle: no modulo bias', () => {
    // A byte source cycling through 0..255 contains every byte value equally often. With
    // rejection of bytes >= 248, every character appears exactly 4 times per 256 bytes; a plain
    // `b % 62` would make '0'..'7' appear 5 times.
    const src = cyclingBytes();
    const cycles = 50;
    const s = randomBase62(248 * cycles, src.bytes);
    const counts = new Map<string, number>();
    for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
    expect(counts.size).toBe(62);
    for (const c of BASE62_ALPHABET) expect(counts.get(c)).toBe(4 * cycles);
  });

  it('is roughly uniform from a pseudo-random source (chi-square)', () => {
    const n = 62 * 2000;
    const s = randomBase62(n, seededBytes(42));
    const counts = new Array<number>(62).fill(0);
    for (const c of s) counts[BASE62_ALPHABET.indexOf(c)]++;
    const expected = n / 62;
    const chi2 = counts.reduce((acc, k) => acc + (k - expected) ** 2 / expected, 0);
    // 61 degrees of freedom: p = 0.001 at about 100.9.
    expect(chi2).toBeLessThan(101);
    // The biased mapping would over-represent '0'..'7' by 25%: check the low characters directly.
    const low = counts.slice(0, 8).reduce((a, b) => a + b, 0) / 8;
    const high = counts.slice(8).reduce((a, b) => a + b, 0) / 54;
    expect(Math.abs(low / high - 1)).toBeLessThan(0.05);
  });
});
