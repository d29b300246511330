import fc from 'fast-check';
import { BASE62_ALPHABET } from '../../../src/domain/base62';
import {
  CHECKSUM_LENGTH,
  checksumOf,
  displayHint,
  generateKey,
  isValidPrefix,
  MAX_KEY_LENGTH,
  MAX_PREFIX_LENGTH,
  parseKey,
  RANDOM_LENGTH,
  type ParsedKey,
} from '../../../src/domain/key-format';
import { seededBytes } from '../helpers/bytes';

// ---- independent reference implementation (CRC32 from its definition, base62 by hand) ----

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32Ref(s: string): number {
  let c = 0xffffffff;
  for (const b of Buffer.from(s, 'utf8')) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function base62Ref(v: number, width: number): string {
  let s = '';
  do {
    s = BASE62_ALPHABET[v % 62] + s;
    v = Math.floor(v / 62);
  } while (v > 0);
  return s.padStart(width, '0');
}

function refPrefixOk(p: string): boolean {
  if (p.length === 0 || p.length > 32) return false;
  const parts = p.split('_');
  if (parts.length > 4) return false;
  if (!parts.every((x) => /^[a-z0-9]+$/.test(x))) return false;
  return /^[a-z]/.test(parts[0]);
}

function refParse(input: string): ParsedKey | null {
  const m = /^(.+)_([0-9A-Za-z]{33})([0-9A-Za-z]{6})$/s.exec(input);
  if (!m || input.length > 512 || !refPrefixOk(m[1])) return null;
  if (base62Ref(crc32Ref(`${m[1]}_${m[2]}`), 6) !== m[3]) return null;
  return { prefix: m[1], random: m[2], checksum: m[3] };
}

// ---- arbitraries ----

const prefixArb = fc.stringMatching(/^[a-z][a-z0-9]{0,6}(?:_[a-z0-9]{1,6}){0,3}$/).filter((p) => p.length <= 32);
const base62Char = fc.constantFrom(...BASE62_ALPHABET);
const base62String = (n: number) => fc.string({ unit: base62Char, minLength: n, maxLength: n });

function keyFor(prefix: string, seed: number): string {
  return generateKey(prefix, seededBytes(seed));
}

const SAMPLE_KEYS = [
  keyFor('sk', 1),
  keyFor('sk_live', 2),
  keyFor('pk_test', 3),
  keyFor('a', 4),
  keyFor('a1_b2_c3_d4', 5),
];

function splitKey(key: string): { head: string; body: string } {
  const sep = key.lastIndexOf('_');
  return { head: key.slice(0, sep + 1), body: key.slice(sep + 1) };
}

describe('constants', () => {
  it('match the documented format', () => {
    expect(RANDOM_LENGTH).toBe(33);
    expect(CHECKSUM_LENGTH).toBe(6);
    expect(MAX_PREFIX_LENGTH).toBe(32);
    expect(MAX_KEY_LENGTH).toBe(512);
    // 33 base62 characters carry more than 196 bits.
    expect(RANDOM_LENGTH * Math.log2(62)).toBeGreaterThan(196);
  });
});

describe('checksumOf', () => {
  it('is the CRC32 (IEEE) in 6 base62 characters', () => {
    // Standard CRC32 check value: crc32("123456789") = 0xCBF43926.
    expect(checksumOf('123456789')).toBe('3jZRME');
    expect(checksumOf('')).toBe('000000');
  });

  it('agrees with a reference CRC32 on arbitrary text', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 80 }), (s) => {
        expect(checksumOf(s)).toBe(base62Ref(crc32Ref(s), 6));
      }),
      { numRuns: 300 },
    );
  });
});

describe('generateKey / parseKey', () => {
  it('produces <prefix>_<33 random><6 checksum> that parses back', () => {
    fc.assert(
      fc.property(prefixArb, fc.integer(), (prefix, seed) => {
        const key = keyFor(prefix, seed);
        expect(key.startsWith(`${prefix}_`)).toBe(true);
        expect(key).toHaveLength(prefix.length + 1 + 33 + 6);
        const parsed = parseKey(key);
        expect(parsed).not.toBeNull();
        expect(parsed!.prefix).toBe(prefix);
        expect(parsed!.random).toMatch(/^[0-9A-Za-z]{33}$/);
        expect(parsed!.checksum).toMatch(/^[0-9A-Za-z]{6}$/);
        expect(`${parsed!.prefix}_${parsed!.random}${parsed!.checksum}`).toBe(key);
        expect(parsed!.checksum).toBe(base62Ref(crc32Ref(`${prefix}_${parsed!.random}`), 6));
        expect(refParse(key)).toEqual(parsed);
      }),
      { numRuns: 300 },
    );
  });

  it('uses the injected byte source deterministically', () => {
    expect(keyFor('sk', 7)).toBe(keyFor('sk', 7));
    expect(keyFor('sk', 7)).not.toBe(keyFor('sk', 8));
  });

  it('uses the CSPRNG by default: keys differ and parse', () => {
    const keys = new Set(Array.from({ length: 50 }, () => generateKey('sk_live')));
    expect(keys.size).toBe(50);
    for (const k of keys) expect(parseKey(k)?.prefix).toBe('sk_live');
  });

  it.each(['', 'SK', '1sk', 'sk_', '_sk', 'sk__live', 'sk-live', 'a_b_c_d_e', 'a'.repeat(33), 'sk live'])(
    'refuses the invalid prefix %j with a RangeError',
    (prefix) => {
      expect(() => generateKey(prefix, seededBytes(1))).toThrow(RangeError);
    },
  );

  it('accepts a prefix of exactly 32 characters', () => {
    const prefix = 'a'.repeat(32);
    expect(parseKey(generateKey(prefix, seededBytes(1)))?.prefix).toBe(prefix);
  });
});

describe('checksum rejects corrupted keys', () => {
  // Exhaustive over a few keys: every single-character edit of the body is caught.
  const alphabetPlus = `${BASE62_ALPHABET}_-. é`;

  it.each(SAMPLE_KEYS)('every substitution in the body of %s is rejected', (key) => {
    const { head, body } = splitKey(key);
    expect(parseKey(key)).not.toBeNull();
    for (let i = 0; i < body.length; i++) {
      for (const c of alphabetPlus) {
        if (c === body[i]) continue;
        const bad = head + body.slice(0, i) + c + body.slice(i + 1);
        expect([i, c, parseKey(bad)]).toEqual([i, c, null]);
      }
    }
  });

  it.each(SAMPLE_KEYS)('every deletion and insertion in the body of %s is rejected', (key) => {
    const { head, body } = splitKey(key);
    for (let i = 0; i < body.length; i++) {
      expect(parseKey(head + body.slice(0, i) + body.slice(i + 1))).toBeNull();
    }
    for (let i = 0; i <= body.length; i++) {
      for (const c of BASE62_ALPHABET) {
        expect(parseKey(head + body.slice(0, i) + c + body.slice(i))).toBeNull();
      }
    }
  });

  it.each(SAMPLE_KEYS)('every adjacent transposition in the body of %s is rejected', (key) => {
    const { head, body } = splitKey(key);
    for (let i = 0; i + 1 < body.length; i++) {
      if (body[i] === body[i + 1]) continue;
      const bad = head + body.slice(0, i) + body[i + 1] + body[i] + body.slice(i + 2);
      expect([i, parseKey(bad)]).toEqual([i, null]);
    }
  });

  it.each(SAMPLE_KEYS)('every substitution in the prefix of %s is rejected (the checksum covers it)', (key) => {
    const { head, body } = splitKey(key);
    const prefix = head.slice(0, -1);
    for (let i = 0; i < prefix.length; i++) {
      for (const c of 'abcdefghijklmnopqrstuvwxyz0123456789_') {
        if (c === prefix[i]) continue;
        const bad = `${prefix.slice(0, i)}${c}${prefix.slice(i + 1)}_${body}`;
        expect([i, c, parseKey(bad)]).toEqual([i, c, null]);
      }
    }
  });

  it('rejects random single edits of random keys (property)', () => {
    const edit = fc.oneof(
      fc.record({ kind: fc.constant('sub' as const), at: fc.nat(), c: base62Char }),
      fc.record({ kind: fc.constant('del' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('ins' as const), at: fc.nat(), c: base62Char }),
      fc.record({ kind: fc.constant('swap' as const), at: fc.nat() }),
    );
    fc.assert(
      fc.property(prefixArb, fc.integer(), edit, (prefix, seed, e) => {
        const { head, body } = splitKey(keyFor(prefix, seed));
        let bad: string;
        if (e.kind === 'sub') {
          const i = e.at % body.length;
          fc.pre(body[i] !== e.c);
          bad = body.slice(0, i) + e.c + body.slice(i + 1);
        } else if (e.kind === 'del') {
          const i = e.at % body.length;
          bad = body.slice(0, i) + body.slice(i + 1);
        } else if (e.kind === 'ins') {
          const i = e.at % (body.length + 1);
          bad = body.slice(0, i) + e.c + body.slice(i);
        } else {
          const i = e.at % (body.length - 1);
          fc.pre(body[i] !== body[i + 1]);
          bad = body.slice(0, i) + body[i + 1] + body[i] + body.slice(i + 2);
        }
        expect(parseKey(head + bad)).toBeNull();
      }),
      { numRuns: 500 },
    );
  });

  it('rejects truncated and extended keys', () => {
    for (const key of SAMPLE_KEYS) {
      for (let n = 0; n < key.length; n++) expect(parseKey(key.slice(0, n))).toBeNull();
      expect(parseKey(`${key}0`)).toBeNull();
      expect(parseKey(`${key} `)).toBeNull();
      expect(parseKey(` ${key}`)).toBeNull();
      expect(parseKey(`${key}\n`)).toBeNull();
      expect(parseKey(key.toUpperCase())).toBeNull();
    }
  });

  it('rejects a well-formed body with a wrong checksum', () => {
    const { head, body } = splitKey(SAMPLE_KEYS[0]);
    const random = body.slice(0, 33);
    expect(parseKey(`${head}${random}000000`)).toBeNull();
    expect(parseKey(`${head}${random}zzzzzz`)).toBeNull();
  });

  it('rejects a valid body moved to another prefix', () => {
    const { body } = splitKey(keyFor('sk_live', 11));
    expect(parseKey(`sk_test_${body}`)).toBeNull();
    expect(parseKey(`sk_${body}`)).toBeNull();
  });
});

describe('parseKey on arbitrary input', () => {
  it('never throws and agrees with a reference parser on arbitrary strings', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 100 }),
          fc.string({ unit: 'binary', maxLength: 100 }),
          fc.string({ unit: 'grapheme', maxLength: 60 }),
          fc.string({ unit: fc.constantFrom('a', 'z', '0', 'Z', '_', '-', 'é'), maxLength: 80 }),
        ),
        (s) => {
          expect(parseKey(s)).toEqual(refParse(s));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('agrees with the reference on near-keys, with right or wrong checksums', () => {
    const nearKey = fc
      .tuple(
        fc.oneof(prefixArb, fc.string({ unit: fc.constantFrom('a', 'B', '1', '_', '-'), minLength: 0, maxLength: 40 })),
        base62String(33),
        fc.oneof(base62String(6), fc.constant(null)),
        fc.boolean(),
      )
      .map(([prefix, random, checksum, sep]) => {
        const head = `${prefix}${sep ? '_' : ''}${random}`;
        return head + (checksum ?? base62Ref(crc32Ref(head), 6));
      });
    let valid = 0;
    fc.assert(
      fc.property(nearKey, (s) => {
        const ref = refParse(s);
        if (ref) valid++;
        expect(parseKey(s)).toEqual(ref);
      }),
      { numRuns: 1000 },
    );
    expect(valid).toBeGreaterThan(50); // the generator does reach the valid case
  });

  it.each([
    ['empty', ''],
    ['underscore only', '_'],
    ['no prefix', `_${'0'.repeat(39)}`],
    ['no separator', 'sk' + '0'.repeat(39)],
    ['just above the limit', 'a'.repeat(MAX_KEY_LENGTH + 1)],
    ['long key-like text', `sk_${'0'.repeat(600)}`],
    ['1 MB of base62', 'A'.repeat(1 << 20)],
    ['1 MB of underscores', '_'.repeat(1 << 20)],
    ['1 MB of astral characters', '😀'.repeat(1 << 19)],
    ['lone surrogates', '\ud800\udc00\udfff_'.repeat(10)],
    ['NUL bytes', '\u0000'.repeat(100)],
  ])('returns null without throwing for %s', (_label, input) => {
    expect(() => parseKey(input)).not.toThrow();
    expect(parseKey(input)).toBeNull();
  });

  it('returns null quickly for huge inputs (length is checked before any scan)', () => {
    const huge = 'A'.repeat(8 << 20); // 8 MB without a separator: a scan would read all of it
    const start = process.hrtime.bigint();
    for (let i = 0; i < 200; i++) expect(parseKey(huge)).toBeNull();
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    // A full scan of 8 MB, 200 times, would take far longer than this.
    expect(ms).toBeLessThan(200);
  });

  it.each([123, undefined, null, {}, [], Symbol('k')])('returns null for the non-string %p', (v) => {
    expect(parseKey(v as unknown as string)).toBeNull();
  });
});

describe('isValidPrefix', () => {
  it.each(['a', 'sk', 'sk_live', 'pk_test', 'a1', 'a_1', 'a_b_c_d', 'x9_0_00_000', 'a'.repeat(32), `a${'_b'.repeat(3)}`])(
    'accepts %j',
    (p) => {
      expect(isValidPrefix(p)).toBe(true);
    },
  );

  it.each([
    '',
    '1a',
    '_a',
    'a_',
    'a__b',
    'A',
    'sK',
    'a_b_c_d_e',
    'a'.repeat(33),
    `sk_${'a'.repeat(30)}`,
    'a-b',
    'a b',
    'a.b',
    'é',
    'sk\n',
    '\nsk',
    'sk_live\n',
  ])('rejects %j', (p) => {
    expect(isValidPrefix(p)).toBe(false);
  });

  it('agrees with a reference predicate', () => {
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', 'q', 'z', '0', '9', '_', 'A', '-', '\n'), maxLength: 40 }), (p) => {
        expect(isValidPrefix(p)).toBe(refPrefixOk(p));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('displayHint', () => {
  it('is the prefix plus the first 4 random characters', () => {
    expect(displayHint({ prefix: 'sk_live', random: 'AbCdEfG'.padEnd(33, 'x'), checksum: '000000' })).toBe('sk_live_AbCd');
  });

  it('is a prefix of the key and reveals only 4 random characters', () => {
    fc.assert(
      fc.property(prefixArb, fc.integer(), (prefix, seed) => {
        const key = keyFor(prefix, seed);
        const parsed = parseKey(key)!;
        const hint = displayHint(parsed);
        expect(key.startsWith(hint)).toBe(true);
        expect(hint).toHaveLength(prefix.length + 1 + 4);
        expect(hint).toBe(`${prefix}_${parsed.random.slice(0, 4)}`);
      }),
      { numRuns: 200 },
    );
  });
});
