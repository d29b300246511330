import fc from 'fast-check';
import { isKeyId, KEY_ID_PATTERN, KeyIdGenerator } from '../../../src/domain/key-id';
import { constantBytes, seededBytes } from '../helpers/bytes';

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function decodeTime(id: string): number {
  let t = 0;
  for (const c of id.slice(4, 14)) t = t * 32 + CROCKFORD.indexOf(c);
  return t;
}

const MAX_TIME = 2 ** 48 - 1;

describe('KeyIdGenerator', () => {
  it('makes ids matching KEY_ID_PATTERN with the time in the first 10 characters', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: MAX_TIME }), fc.integer(), (now, seed) => {
        const id = new KeyIdGenerator(seededBytes(seed)).next(now);
        expect(id).toMatch(KEY_ID_PATTERN);
        expect(id).toHaveLength(30);
        expect(isKeyId(id)).toBe(true);
        expect(decodeTime(id)).toBe(now);
      }),
      { numRuns: 300 },
    );
  });

  it('encodes known times', () => {
    const gen = () => new KeyIdGenerator(constantBytes([0]));
    expect(gen().next(0)).toBe(`key_${'0'.repeat(26)}`);
    expect(gen().next(1).slice(4, 14)).toBe('0000000001');
    expect(gen().next(32).slice(4, 14)).toBe('0000000010');
    expect(gen().next(MAX_TIME).slice(4, 14)).toBe('7ZZZZZZZZZ');
    // 2024-11-21T00:00:00.000Z
    expect(gen().next(1732147200000).slice(4, 14)).toBe('01JD609G00');
  });

  it('takes the random part from 16 bytes, 5 bits each', () => {
    const bytes = [0, 31, 32, 63, 64, 255, 224, 1, 2, 3, 100, 200, 250, 17, 18, 19];
    const id = new KeyIdGenerator(constantBytes(bytes)).next(0);
    // The low 5 bits of each byte: 0 31 0 31 0 31 0 1 2 3 4 8 26 17 18 19 in Crockford base32
    expect(id.slice(14)).toBe('0Z0Z0Z012348THJK');
  });

  it('uses the CSPRNG by default: ids in different generators differ', () => {
    const ids = new Set(Array.from({ length: 100 }, () => new KeyIdGenerator().next(1000)));
    expect(ids.size).toBe(100);
    for (const id of ids) expect(isKeyId(id)).toBe(true);
  });

  it('strictly increases for many ids in the same millisecond', () => {
    const gen = new KeyIdGenerator(seededBytes(1));
    let prev = gen.next(5000);
    for (let i = 0; i < 5000; i++) {
      const id = gen.next(5000);
      expect(id > prev).toBe(true);
      expect(decodeTime(id)).toBe(5000);
      prev = id;
    }
  });

  it('increments the random part by one within a millisecond, with carry', () => {
    const bytes = [...new Array<number>(14).fill(0), 30, 31];
    const gen = new KeyIdGenerator(constantBytes(bytes));
    expect(gen.next(7).slice(14)).toBe(`${'0'.repeat(14)}YZ`);
    expect(gen.next(7).slice(14)).toBe(`${'0'.repeat(14)}Z0`);
    expect(gen.next(7).slice(14)).toBe(`${'0'.repeat(14)}Z1`);
  });

  it('draws fresh random bytes for a later millisecond', () => {
    let calls = 0;
    const gen = new KeyIdGenerator((n) => {
      calls++;
      return seededBytes(calls)(n);
    });
    gen.next(1);
    gen.next(1);
    expect(calls).toBe(1);
    gen.next(2);
    expect(calls).toBe(2);
  });

  it('throws a RangeError rather than repeat or wrap when the random part overflows in one ms', () => {
    const gen = new KeyIdGenerator(constantBytes([31]));
    const first = gen.next(9);
    expect(first.slice(14)).toBe('Z'.repeat(16));
    expect(() => gen.next(9)).toThrow(RangeError);
  });

  it('still increases when the clock goes backwards, keeping the latest time', () => {
    const gen = new KeyIdGenerator(seededBytes(3));
    const a = gen.next(10_000);
    const b = gen.next(9_000);
    const c = gen.next(0);
    expect(b > a).toBe(true);
    expect(c > b).toBe(true);
    expect(decodeTime(b)).toBe(10_000);
    expect(decodeTime(c)).toBe(10_000);
    const d = gen.next(10_001);
    expect(d > c).toBe(true);
    expect(decodeTime(d)).toBe(10_001);
  });

  it('strictly increases for any sequence of clock readings (property)', () => {
    fc.assert(
      fc.property(fc.integer(), fc.array(fc.integer({ min: 0, max: 1_000 }), { minLength: 1, maxLength: 200 }), (seed, times) => {
        const gen = new KeyIdGenerator(seededBytes(seed));
        let prev = '';
        let maxTime = -1;
        for (const t of times) {
          const id = gen.next(t);
          maxTime = Math.max(maxTime, t);
          expect(id > prev).toBe(true);
          expect(decodeTime(id)).toBe(maxTime);
          prev = id;
        }
      }),
      { numRuns: 200 },
    );
  });

  it('sorts by time: lexicographic order equals time order, across generators', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: MAX_TIME }),
        fc.integer({ min: 0, max: MAX_TIME }),
        fc.integer(),
        fc.integer(),
        (t1, t2, s1, s2) => {
          fc.pre(t1 !== t2);
          const a = new KeyIdGenerator(seededBytes(s1)).next(t1);
          const b = new KeyIdGenerator(seededBytes(s2)).next(t2);
          expect(a < b).toBe(t1 < t2);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('sorting many ids by string sorts them by creation time', () => {
    const gen = new KeyIdGenerator(seededBytes(5));
    const ids: string[] = [];
    for (let t = 0; t < 3000; t += 7) ids.push(gen.next(t), gen.next(t));
    const rnd = seededBytes(9);
    const shuffled = [...ids];
    for (let i = shuffled.length - 1; i > 0; i--) {
      const j = (rnd(1)[0] * 256 + rnd(1)[0]) % (i + 1);
      [shuffled[i], shuffled[j]] = [shuffled[j], shuffled[i]];
    }
    expect(shuffled).not.toEqual(ids);
    expect(shuffled.sort()).toEqual(ids);
  });
});

describe('isKeyId', () => {
  it.each([`key_${'0'.repeat(26)}`, 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A', `key_${'Z'.repeat(26)}`])('accepts %s', (id) => {
    expect(isKeyId(id)).toBe(true);
  });

  it.each([
    '',
    'key_',
    '01JD6Z3M8Q4ZC2N1XW7V5TBR9A',
    'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9', // 25
    'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9AB', // 27
    'KEY_01JD6Z3M8Q4ZC2N1XW7V5TBR9A',
    'key-01JD6Z3M8Q4ZC2N1XW7V5TBR9A',
    'key_01jd6z3m8q4zc2n1xw7v5tbr9a', // lower case
    'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9I', // I is not Crockford
    'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9L',
    'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9O',
    'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9U',
    'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A\n',
    ' key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A',
    'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A ',
  ])('rejects %j', (id) => {
    expect(isKeyId(id)).toBe(false);
  });
});
