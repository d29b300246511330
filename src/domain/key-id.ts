import { randomBytes } from 'node:crypto';

/**
 * Public key ids: `key_` + a ULID (48-bit millisecond time + 80 random bits, Crockford base32).
 * Ids sort by creation time, so list pages ordered by id are stable under concurrent inserts:
 * new keys land after every existing cursor.
 */
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
export const KEY_ID_PATTERN = /^key_[0-9A-HJKMNP-TV-Z]{26}$/;

export class KeyIdGenerator {
  private lastTime = -1;
  private lastRandom: number[] = [];

  /** `prefix` names the kind of id: `key` for keys, `evt` for events. */
  constructor(
    private readonly bytes: (n: number) => Uint8Array = randomBytes,
    private readonly prefix = 'key',
  ) {}

  /** Strictly increasing within this generator, even for ids made in the same millisecond. */
  next(nowMs: number): string {
    let random: number[];
    if (nowMs <= this.lastTime) {
      random = increment(this.lastRandom);
      nowMs = this.lastTime;
    } else {
      const b = this.bytes(16);
      random = Array.from({ length: 16 }, (_, i) => b[i] & 31);
    }
    this.lastTime = nowMs;
    this.lastRandom = random;
    let time = '';
    let t = nowMs;
    for (let i = 0; i < 10; i++) {
      time = CROCKFORD[t % 32] + time;
      t = Math.floor(t / 32);
    }
    return `${this.prefix}_${time}${random.map((d) => CROCKFORD[d]).join('')}`;
  }
}

function increment(digits: number[]): number[] {
  const out = digits.slice();
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] < 31) {
      out[i]++;
      return out;
    }
    out[i] = 0;
  }
  throw new RangeError('key id random part overflowed within one millisecond');
}

export function isKeyId(id: string): boolean {
  return KEY_ID_PATTERN.test(id);
}
