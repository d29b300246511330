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
    return formatUlid(this.prefix, nowMs, random);
  }
}

/**
 * `<prefix>_` + a ULID of `timeMs` (10 Crockford digits) and 16 random digits (each 0..31).
 * Also used for ids that must be reproducible (the scheduler's event ids), with digits from a hash.
 */
export function formatUlid(prefix: string, timeMs: number, digits: ArrayLike<number>): string {
  let time = '';
  let t = Math.max(0, Math.floor(timeMs));
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[t % 32] + time;
    t = Math.floor(t / 32);
  }
  let rand = '';
  for (let i = 0; i < 16; i++) rand += CROCKFORD[digits[i] & 31];
  return `${prefix}_${time}${rand}`;
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
