import type { DeadLetter, DeadLetterStore } from './dead-letter-store';

export interface MemoryDeadLetterStoreOptions {
  /** Records kept; the oldest is dropped beyond it. Default 10 000. */
  capacity?: number;
}

/**
 * Dead letters in a bounded ring in process memory: the default when no Redis is configured.
 * Lost on restart, so a fleet that cares about replaying failed webhooks runs with Redis.
 */
export class MemoryDeadLetterStore implements DeadLetterStore {
  private readonly ring: (DeadLetter | undefined)[];
  /** Index the next record goes to. */
  private next = 0;
  private count = 0;

  constructor(opts: MemoryDeadLetterStoreOptions = {}) {
    const capacity = opts.capacity ?? 10_000;
    if (!Number.isSafeInteger(capacity) || capacity < 1) {
      throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    }
    this.ring = new Array<DeadLetter | undefined>(capacity);
  }

  get size(): number {
    return this.count;
  }

  async append(record: DeadLetter): Promise<void> {
    this.ring[this.next] = record;
    this.next = (this.next + 1) % this.ring.length;
    if (this.count < this.ring.length) this.count++;
  }

  async list(limit: number): Promise<DeadLetter[]> {
    checkLimit(limit);
    const out: DeadLetter[] = [];
    const n = Math.min(limit, this.count);
    for (let i = 1; i <= n; i++) {
      out.push(this.ring[(this.next - i + this.ring.length) % this.ring.length]!);
    }
    return out;
  }
}

export function checkLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 0) throw new RangeError(`limit must be a non-negative integer, got ${limit}`);
}
