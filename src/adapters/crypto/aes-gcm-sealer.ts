import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { SealedSecretError, type SecretSealer } from '../../ports/secret-sealer';

export { SealedSecretError };

const VERSION = 'v1';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/**
 * AES-256-GCM with a random 96-bit IV per seal and the context as additional authenticated
 * data. Format: `v1.<kek id>.<base64url iv | ciphertext | tag>`; the KEK id (8 hex characters
 * of the KEK's SHA-256) tells an operator which KEK sealed a blob after they change it.
 */
export class AesGcmSealer implements SecretSealer {
  readonly kekId: string;

  constructor(private readonly kek: Buffer) {
    if (kek.length !== 32) throw new RangeError(`the key-encryption key must be 32 bytes, got ${kek.length}`);
    this.kekId = createHash('sha256').update(kek).digest('hex').slice(0, 8);
  }

  seal(secret: string, context: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.kek, iv);
    cipher.setAAD(Buffer.from(context, 'utf8'));
    const body = Buffer.concat([iv, cipher.update(secret, 'utf8'), cipher.final(), cipher.getAuthTag()]);
    return `${VERSION}.${this.kekId}.${body.toString('base64url')}`;
  }

  open(sealed: string, context: string): string {
    const [version, kekId, data] = sealed.split('.');
    if (version !== VERSION || data === undefined) throw new SealedSecretError('not a sealed secret of a known format');
    if (kekId !== this.kekId) throw new SealedSecretError(`sealed under another key-encryption key (${kekId}, configured ${this.kekId})`);
    const body = Buffer.from(data, 'base64url');
    if (body.length < IV_BYTES + TAG_BYTES) throw new SealedSecretError('sealed secret too short');
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.kek, body.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(context, 'utf8'));
      decipher.setAuthTag(body.subarray(body.length - TAG_BYTES));
      return Buffer.concat([decipher.update(body.subarray(IV_BYTES, body.length - TAG_BYTES)), decipher.final()]).toString('utf8');
    } catch (err) {
      throw new SealedSecretError('sealed secret failed authentication', { cause: err });
    }
  }
}
