import { randomUUID } from 'node:crypto';
import type { Logger } from '../logger';
import { PeriodicFlush } from './periodic-flush';
import type { KeyStore, UsageDelta } from '../ports/key-store';

export interface UsageTrackerOptions {
  store: Pick<KeyStore, 'addUsage'>;
  logger: Logger;
  /** Flush period; usage reaches the store at most this often. */
  intervalMs: number;
  /** Keys kept between flushes while the store is unreachable; beyond it new keys' usage is dropped. */
  maxPendingKeys?: number;
}

/**
 * Aggregates usage in memory (a count and the last time per key) and writes it to the store in
 * one batch per interval, as increments, so the counts of many sidecars add up exactly and the
 * validation hot path never waits on a store write. A failed batch is retried whole, under the
 * same batch id, so a write that timed out but did land is not counted twice.
 */
export class UsageTracker {
  private pending = new Map<string, { count: number; lastUsedAt: number }>();
  /** A batch whose write failed; retried as is before anything newer. */
  private unsent: { id: string; deltas: UsageDelta[] } | undefined;
  private readonly opts: Required<UsageTrackerOptions>;
  private readonly flusher: PeriodicFlush;

  constructor(opts: UsageTrackerOptions) {
    this.opts = { maxPendingKeys: 100_000, ...opts };
    this.flusher = new PeriodicFlush(() => this.write(), opts.intervalMs);
  }

  /** Hot path: one map update. */
  record(keyId: string, now: number): void {
    const p = this.pending.get(keyId);
    if (p !== undefined) {
      p.count++;
      if (now > p.lastUsedAt) p.lastUsedAt = now;
    } else if (this.pending.size < this.opts.maxPendingKeys) {
      this.pending.set(keyId, { count: 1, lastUsedAt: now });
    }
  }

  get pendingKeys(): number {
    return this.pending.size + (this.unsent?.deltas.length ?? 0);
  }

  start(): void {
    this.flusher.start();
  }

  /** Writes everything pending; concurrent calls share one write. */
  flush(): Promise<void> {
    return this.flusher.flush();
  }

  /** Stops the timer and writes what is left (on SIGTERM). */
  stop(): Promise<void> {
    return this.flusher.stop();
  }

  private async write(): Promise<void> {
    if (this.unsent === undefined) {
      if (this.pending.size === 0) return;
      const deltas: UsageDelta[] = [];
      for (const [keyId, u] of this.pending) deltas.push({ keyId, count: u.count, lastUsedAt: u.lastUsedAt });
      this.pending = new Map();
      this.unsent = { id: randomUUID(), deltas };
    }
    const batch = this.unsent;
    try {
      await this.opts.store.addUsage(batch.deltas, batch.id);
      this.unsent = undefined;
    } catch (err) {
      this.opts.logger.warn({ err, keys: batch.deltas.length }, 'usage flush failed; retrying the same batch next time');
      return;
    }
    if (this.pending.size > 0) await this.write();
  }
}
