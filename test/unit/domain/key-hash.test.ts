import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { hashKey } from '../../../src/domain/key-hash';

describe('hashKey', () => {
  it.each([
    ['', 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855'],
    ['abc', 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad'],
    // UTF-8, not UTF-16 or Latin-1: sha256 of the bytes c3 a9.
    ['é', '4a99557e4033c3539de2eb65472017cad5f9557f7a0625a09f1c3f6e2ba69c4c'],
  ])('is the SHA-256 of the UTF-8 of %j as lowercase hex', (input, expected) => {
    expect(hashKey(input)).toBe(expected);
  });

  it('is 64 lowercase hex characters and deterministic', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 100 }), (s) => {
        const h = hashKey(s);
        expect(h).toMatch(/^[0-9a-f]{64}$/);
        expect(hashKey(s)).toBe(h);
      }),
      { numRuns: 200 },
    );
  });

  it('differs for different keys', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 60 }), fc.string({ maxLength: 60 }), (a, b) => {
        fc.pre(a !== b);
        expect(hashKey(a)).not.toBe(hashKey(b));
      }),
      { numRuns: 200 },
    );
  });

  it('is the digest createHash gives for any string, lone surrogates included', () => {
    const lone = ['\ud800', 'a\udfffb', 'sk_\ud83d'];
    for (const s of lone) expect(hashKey(s)).toBe(createHash('sha256').update(s, 'utf8').digest('hex'));
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 200 }), (s) => {
        expect(hashKey(s)).toBe(createHash('sha256').update(s, 'utf8').digest('hex'));
      }),
      { numRuns: 300 },
    );
  });
});
