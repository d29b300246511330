import type { AuditAppendOptions, AuditEntry, AuditQuery, NewAuditEntry } from '../../ports/audit-log';

/** The per-entry part of an audit query, shared by the memory and Redis logs. */
export function matches(e: AuditEntry, q: AuditQuery): boolean {
  if (q.keyId !== undefined && e.keyId !== q.keyId) return false;
  if (q.types.length > 0 && !q.types.includes(e.type)) return false;
  if (q.from !== undefined && e.time < q.from) return false;
  if (q.to !== undefined && e.time > q.to) return false;
  return true;
}

/** Compares `<ms>-<seq>` ids numerically. */
export function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(Number);
  const [bm, bs] = b.split('-').map(Number);
  return am - bm || as - bs;
}

/** The dedupe ids of a batch, one per entry, or undefined when the append is not deduplicated. */
export function checkDedupeIds(entries: readonly NewAuditEntry[], opts: AuditAppendOptions): readonly string[] | undefined {
  if (opts.dedupeIds === undefined) return undefined;
  if (opts.dedupeIds.length !== entries.length) throw new RangeError(`dedupeIds needs one id per entry (${entries.length}), got ${opts.dedupeIds.length}`);
  return opts.dedupeIds;
}
