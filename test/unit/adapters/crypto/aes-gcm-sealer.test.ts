import { randomBytes } from 'node:crypto';
import { AesGcmSealer, SealedSecretError } from '../../../../src/adapters/crypto/aes-gcm-sealer';

const SECRET = 'sk_live_7Gq2N0tARealSecretButLongEnoughToMatter000000';

describe('AesGcmSealer', () => {
  const kek = randomBytes(32);
  const sealer = new AesGcmSealer(kek);

  it('opens what it sealed, for the same context', () => {
    const sealed = sealer.seal(SECRET, 'key_A');
    expect(sealer.open(sealed, 'key_A')).toBe(SECRET);
  });

  it('never holds the secret in clear and never seals twice the same way', () => {
    const a = sealer.seal(SECRET, 'key_A');
    const b = sealer.seal(SECRET, 'key_A');
    expect(a).not.toContain(SECRET);
    expect(Buffer.from(a.split('.')[2], 'base64url').toString('latin1')).not.toContain(SECRET.slice(8));
    expect(a).not.toBe(b); // random IV per seal
    expect(a.startsWith(`v1.${sealer.kekId}.`)).toBe(true);
  });

  it('refuses another context (a blob moved to another key)', () => {
    expect(() => sealer.open(sealer.seal(SECRET, 'key_A'), 'key_B')).toThrow(SealedSecretError);
  });

  it('refuses an altered blob', () => {
    const sealed = sealer.seal(SECRET, 'key_A');
    const body = Buffer.from(sealed.split('.')[2], 'base64url');
    body[20] ^= 1;
    expect(() => sealer.open(`v1.${sealer.kekId}.${body.toString('base64url')}`, 'key_A')).toThrow(/failed authentication/);
  });

  it('refuses a blob sealed under another key-encryption key, naming both ids', () => {
    const other = new AesGcmSealer(randomBytes(32));
    expect(() => sealer.open(other.seal(SECRET, 'key_A'), 'key_A')).toThrow(new RegExp(`\\(${other.kekId}, configured ${sealer.kekId}\\)`));
  });

  it.each(['', 'v2.x.y', 'v1.abc', `v1.${'0'.repeat(8)}`])('refuses the malformed blob %p', (blob) => {
    expect(() => sealer.open(blob, 'key_A')).toThrow(SealedSecretError);
  });

  it('needs a 32-byte key', () => {
    expect(() => new AesGcmSealer(randomBytes(16))).toThrow(/32 bytes/);
  });
});
