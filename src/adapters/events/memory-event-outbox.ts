import { StoreUnavailableError } from '../../domain/errors';
import type { AppendOptions, EventOutbox, OutboxEntry } from '../../ports/event-outbox';
import type { WireEvent } from '../../ports/event-transport';

/**
 * The outbox of embedded mode: an array in memory, so pending events survive a NATS outage but
 * not a restart of the process. Sequences are decimal integers from 1, as strings.
 */
const MAX_SEEN = 100_000;

export class MemoryEventOutbox implements EventOutbox {
  private entries: OutboxEntry[] = [];
  private nextSeq = 1;
  private closed = false;
  private readonly waiters = new Set<() => void>();
  /** Ids of deduplicated appends, oldest first; bounded (re-emits follow a crash within minutes). */
  private readonly seen = new Set<string>();

  async append(event: WireEvent, opts: AppendOptions = {}): Promise<void> {
    if (this.closed) throw new StoreUnavailableError('outbox is closed');
    if (opts.dedupe) {
      if (this.seen.has(event.id)) return;
      this.seen.add(event.id);
      if (this.seen.size > MAX_SEEN) this.seen.delete(this.seen.values().next().value!);
    }
    this.entries.push({ seq: String(this.nextSeq++), event });
    this.wake();
  }

  async read(afterSeq: string | undefined, limit: number, blockMs: number): Promise<OutboxEntry[]> {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
    const after = afterSeq === undefined ? 0 : parseSeq(afterSeq);
    if (this.closed) throw new StoreUnavailableError('outbox is closed');
    const found = this.after(after, limit);
    if (found.length > 0 || blockMs <= 0) return found;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.waiters.delete(done);
        resolve();
      };
      const timer = setTimeout(done, blockMs);
      timer.unref(); // a waiting read alone does not keep the process alive
      this.waiters.add(done);
    });
    return this.closed ? [] : this.after(after, limit);
  }

  async ack(seq: string): Promise<void> {
    const upTo = parseSeq(seq);
    let i = 0;
    while (i < this.entries.length && Number(this.entries[i].seq) <= upTo) i++;
    if (i > 0) this.entries = this.entries.slice(i);
  }

  async size(): Promise<number> {
    return this.entries.length;
  }

  /** Wakes blocked reads (they return nothing); later appends and reads fail. */
  async close(): Promise<void> {
    this.closed = true;
    this.wake();
  }

  private after(after: number, limit: number): OutboxEntry[] {
    // entries are in seq order: find the first one past `after` by binary search
    let lo = 0;
    let hi = this.entries.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (Number(this.entries[mid].seq) <= after) lo = mid + 1;
      else hi = mid;
    }
    return this.entries.slice(lo, lo + limit);
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }
}

function parseSeq(seq: string): number {
  const n = Number(seq);
  if (!/^\d+$/.test(seq) || !Number.isSafeInteger(n)) throw new RangeError(`not an outbox sequence: ${JSON.stringify(seq)}`);
  return n;
}
