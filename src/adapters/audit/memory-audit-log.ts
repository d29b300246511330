import type { AuditAppendOptions, AuditEntry, AuditLog, AuditPage, AuditQuery, NewAuditEntry } from '../../ports/audit-log';
import { checkDedupeIds, compareIds, matches } from './audit-filter';

const MAX_SEEN = 100_000;

export interface MemoryAuditLogOptions {
  /** Entries kept; the oldest go first. */
  maxEntries: number;
  /** Entries older than this are dropped (ms). */
  retentionMs: number;
  now: () => number;
}

/** The embedded audit log: the same contract as the Redis one, bounded in memory. */
export class MemoryAuditLog implements AuditLog {
  private readonly entries: AuditEntry[] = [];
  private lastMs = 0;
  private seq = 0;
  /** Ids of deduplicated entries, oldest first; bounded. */
  private readonly seen = new Set<string>();

  constructor(private readonly opts: MemoryAuditLogOptions) {}

  async append(entries: readonly NewAuditEntry[], opts: AuditAppendOptions = {}): Promise<void> {
    const dedupe = checkDedupeIds(entries, opts);
    for (const [i, e] of entries.entries()) {
      if (dedupe) {
        if (this.seen.has(dedupe[i])) continue;
        this.seen.add(dedupe[i]);
        if (this.seen.size > MAX_SEEN) this.seen.delete(this.seen.values().next().value!);
      }
      const ms = Math.max(this.opts.now(), this.lastMs);
      this.seq = ms === this.lastMs ? this.seq + 1 : 0;
      this.lastMs = ms;
      this.entries.push({ ...e, detail: { ...e.detail }, id: `${ms}-${this.seq}` });
    }
    const cutoff = this.opts.now() - this.opts.retentionMs;
    let drop = Math.max(0, this.entries.length - this.opts.maxEntries);
    while (drop < this.entries.length && this.entries[drop].time < cutoff) drop++;
    if (drop > 0) this.entries.splice(0, drop);
  }

  async list(q: AuditQuery): Promise<AuditPage> {
    const out: AuditEntry[] = [];
    let i = this.entries.length - 1;
    if (q.before !== undefined) {
      // Binary search for the first entry older than the cursor.
      let lo = 0;
      let hi = this.entries.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (compareIds(this.entries[mid].id, q.before) < 0) lo = mid + 1;
        else hi = mid;
      }
      i = lo - 1;
    }
    for (; i >= 0; i--) {
      const e = this.entries[i];
      if (q.from !== undefined && e.time < q.from) break;
      if (q.service !== undefined && e.service !== q.service) continue;
      if (!matches(e, q)) continue;
      if (out.length === q.limit) return { entries: out, nextBefore: out[out.length - 1].id };
      out.push({ ...e, detail: { ...e.detail } });
    }
    return { entries: out };
  }

  async close(): Promise<void> {}
}
