import { randomUUID } from 'node:crypto';
import type { Lease } from '../../ports/lease';

/**
 * Leases of one process, shared by the MemoryLease instances that name the same table and by
 * the MemoryKeyStore that checks fences against it. With the embedded store there is only one
 * process, but two schedulers in one process (as tests build them) still contend for real.
 */
export class MemoryLeaseTable {
  private readonly held = new Map<string, { value: string; until: number }>();
  private fence = 0;

  /** The current value of a lease, if held at `now`. */
  current(name: string, now: number): string | undefined {
    const h = this.held.get(name);
    return h !== undefined && now < h.until ? h.value : undefined;
  }

  acquire(name: string, instanceId: string, current: string | undefined, ttlMs: number, now: number): string | undefined {
    const cur = this.current(name, now);
    if (cur !== undefined && cur !== current) return undefined;
    const value = cur ?? `${instanceId}:${++this.fence}`;
    this.held.set(name, { value, until: now + ttlMs });
    return value;
  }

  release(name: string, value: string): void {
    if (this.held.get(name)?.value === value) this.held.delete(name);
  }
}

export interface MemoryLeaseOptions {
  table: MemoryLeaseTable;
  name: string;
  instanceId?: string;
  now?: () => number;
}

export class MemoryLease implements Lease {
  readonly name: string;
  private readonly instanceId: string;
  private readonly now: () => number;
  private value?: string;
  private validUntil = 0;

  constructor(private readonly opts: MemoryLeaseOptions) {
    this.name = opts.name;
    this.instanceId = opts.instanceId ?? randomUUID();
    this.now = opts.now ?? Date.now;
  }

  async tryAcquire(ttlMs: number): Promise<boolean> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 10) throw new RangeError(`ttlMs must be an integer >= 10, got ${ttlMs}`);
    const now = this.now();
    const value = this.opts.table.acquire(this.name, this.instanceId, this.value, ttlMs, now);
    if (value === undefined) {
      this.value = undefined;
      this.validUntil = 0;
      return false;
    }
    this.value = value;
    this.validUntil = now + Math.floor(ttlMs * 0.9);
    return true;
  }

  holds(): boolean {
    return this.value !== undefined && this.now() < this.validUntil;
  }

  holder(): string | undefined {
    return this.holds() ? this.value : undefined;
  }

  async release(): Promise<void> {
    const value = this.value;
    this.value = undefined;
    this.validUntil = 0;
    if (value !== undefined) this.opts.table.release(this.name, value);
  }
}
