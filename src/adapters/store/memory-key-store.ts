import { AlreadyExistsError, ConflictError, NotFoundError } from '../../domain/errors';
import type { KeyRecord } from '../../domain/key-record';
import { quotaExceeded, type KeyStore, type ListPage, type ListQuery, type UsageDelta, type WriteOptions } from '../../ports/key-store';
import { SortedIds } from './sorted-ids';

/**
 * The embedded store: keyward's default when no Redis is configured, for a single sidecar or
 * development. Same contract as the Redis store. Records are copied in and out so callers can
 * never alias stored state.
 */
export class MemoryKeyStore implements KeyStore {
  private readonly byId = new Map<string, KeyRecord>();
  private readonly idByHash = new Map<string, string>();
  private readonly indexes = new Map<string, SortedIds>();
  /** Recently applied usage batch ids, oldest first (bounded: retries come within seconds). */
  private readonly usageBatches = new Set<string>();
  private closed = false;

  async create(record: KeyRecord, opts: WriteOptions = {}): Promise<void> {
    this.assertOpen();
    if (this.byId.has(record.id)) throw new AlreadyExistsError(`key ${record.id} already exists`);
    if (this.idByHash.has(record.hash)) throw new AlreadyExistsError('a key with this hash already exists');
    if (record.state === 'active') this.checkQuota(record.service, opts);
    const copy = clone(record);
    this.byId.set(copy.id, copy);
    this.idByHash.set(copy.hash, copy.id);
    for (const name of indexNames(copy)) this.index(name).add(copy.id);
  }

  async getById(id: string): Promise<KeyRecord | undefined> {
    this.assertOpen();
    const r = this.byId.get(id);
    return r && clone(r);
  }

  async getByHash(hash: string): Promise<KeyRecord | undefined> {
    this.assertOpen();
    const id = this.idByHash.get(hash);
    const r = id === undefined ? undefined : this.byId.get(id);
    return r && clone(r);
  }

  async replace(record: KeyRecord, expectedVersion: number, opts: WriteOptions = {}): Promise<void> {
    this.assertOpen();
    const current = this.byId.get(record.id);
    if (!current) throw new NotFoundError(`key ${record.id} not found`);
    if (current.version !== expectedVersion) {
      throw new ConflictError(`key ${record.id} was changed concurrently (version ${current.version}, expected ${expectedVersion})`);
    }
    if (current.hash !== record.hash) throw new RangeError(`replace must not change the hash of key ${record.id}`);
    if (record.state === 'active' && current.state !== 'active') this.checkQuota(record.service, opts);
    // Usage only moves through addUsage; keep the stored figures.
    const next = clone({ ...record, usageCount: current.usageCount, lastUsedAt: current.lastUsedAt });
    if (next.lastUsedAt === undefined) delete (next as { lastUsedAt?: number }).lastUsedAt;
    for (const name of indexNames(current)) this.index(name).remove(current.id);
    for (const name of indexNames(next)) this.index(name).add(next.id);
    this.byId.set(next.id, next);
  }

  async delete(id: string): Promise<KeyRecord | undefined> {
    this.assertOpen();
    const current = this.byId.get(id);
    if (!current) return undefined;
    this.byId.delete(id);
    this.idByHash.delete(current.hash);
    for (const name of indexNames(current)) this.index(name).remove(id);
    return clone(current);
  }

  async list(query: ListQuery): Promise<ListPage> {
    this.assertOpen();
    if (!Number.isInteger(query.limit) || query.limit < 1) throw new RangeError(`list limit must be a positive integer, got ${query.limit}`);
    const { name, residualState } = chooseIndex(query);
    const ids = this.indexes.get(name);
    const records: KeyRecord[] = [];
    let more = false;
    if (ids) {
      for (const id of ids.after(query.after)) {
        const r = this.byId.get(id)!;
        if (residualState !== undefined && r.state !== residualState) continue;
        if (records.length === query.limit) {
          more = true;
          break;
        }
        records.push(clone(r));
      }
    }
    return more ? { records, nextAfter: records[records.length - 1].id } : { records };
  }

  async addUsage(deltas: readonly UsageDelta[], batchId: string): Promise<void> {
    this.assertOpen();
    if (this.usageBatches.has(batchId)) return;
    this.usageBatches.add(batchId);
    if (this.usageBatches.size > 10_000) this.usageBatches.delete(this.usageBatches.values().next().value!);
    for (const d of deltas) {
      const r = this.byId.get(d.keyId);
      if (!r) continue; // deleted meanwhile: usage of a gone key is dropped
      this.byId.set(r.id, {
        ...r,
        usageCount: r.usageCount + d.count,
        lastUsedAt: Math.max(r.lastUsedAt ?? 0, d.lastUsedAt),
      });
    }
  }

  async ping(): Promise<void> {
    this.assertOpen();
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  private checkQuota(service: string, opts: WriteOptions): void {
    const max = opts.maxActiveKeys ?? 0;
    if (max > 0 && (this.indexes.get(`s:${service}|st:active`)?.size ?? 0) >= max) throw quotaExceeded(service, max);
  }

  private index(name: string): SortedIds {
    let ids = this.indexes.get(name);
    if (!ids) {
      ids = new SortedIds();
      this.indexes.set(name, ids);
    }
    return ids;
  }

  private assertOpen(): void {
    if (this.closed) throw new Error('MemoryKeyStore is closed');
  }
}

/**
 * Index names, shared in spirit with the Redis store: every key is listed under its service and
 * under "all services", each alone, by owner and by state.
 */
function indexNames(r: KeyRecord): string[] {
  const names: string[] = [];
  for (const s of [r.service, '*']) names.push(`s:${s}`, `s:${s}|o:${r.owner}`, `s:${s}|st:${r.state}`);
  return names;
}

/** The narrowest index for a query; a state filter combined with an owner is checked per record. */
export function chooseIndex(q: ListQuery): { name: string; residualState?: ListQuery['state'] } {
  const s = `s:${q.service ?? '*'}`;
  if (q.owner !== undefined) return { name: `${s}|o:${q.owner}`, residualState: q.state };
  if (q.state !== undefined) return { name: `${s}|st:${q.state}` };
  return { name: s };
}

function clone(r: KeyRecord): KeyRecord {
  return { ...r, scopes: [...r.scopes], metadata: { ...r.metadata } };
}
