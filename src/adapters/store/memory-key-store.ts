import { AlreadyExistsError, ConflictError, FencedError, NotFoundError } from '../../domain/errors';
import type { KeyRecord } from '../../domain/key-record';
import {
  quotaExceeded,
  type KeyStore,
  type ListPage,
  type ListQuery,
  type RotationWrite,
  type SealedSecret,
  type UsageDelta,
  type WriteOptions,
} from '../../ports/key-store';
import type { MemoryLeaseTable } from '../events/memory-lease';
import { SortedIds } from './sorted-ids';

/**
 * The embedded store: keyward's default when no Redis is configured, for a single sidecar or
 * development. Same contract as the Redis store. Records are copied in and out so callers can
 * never alias stored state.
 */
export interface MemoryKeyStoreOptions {
  /** Where fenced writes (`WriteOptions.fence`) look up the current lease holder. */
  leases?: MemoryLeaseTable;
  /** For fences and sealed-secret expiry. Default Date.now. */
  now?: () => number;
}

export class MemoryKeyStore implements KeyStore {
  private readonly byId = new Map<string, KeyRecord>();
  /** The due index: `<dueAt, 15 digits>:<id>`, so string order is due-time order. */
  private readonly dueIndex = new SortedIds();
  private readonly sealed = new Map<string, SealedSecret>();
  private readonly now: () => number;
  private readonly idByHash = new Map<string, string>();
  private readonly indexes = new Map<string, SortedIds>();
  /** Recently applied usage batch ids, oldest first (bounded: retries come within seconds). */
  private readonly usageBatches = new Set<string>();
  private closed = false;

  constructor(private readonly opts: MemoryKeyStoreOptions = {}) {
    this.now = opts.now ?? Date.now;
  }

  async create(record: KeyRecord, opts: WriteOptions = {}): Promise<void> {
    this.assertOpen();
    this.checkFence(opts);
    this.insert(record, opts);
  }

  private insert(record: KeyRecord, opts: WriteOptions): void {
    if (this.byId.has(record.id)) throw new AlreadyExistsError(`key ${record.id} already exists`);
    if (this.idByHash.has(record.hash)) throw new AlreadyExistsError('a key with this hash already exists');
    if (record.state === 'active') this.checkQuota(record.service, opts);
    const copy = clone(record);
    this.byId.set(copy.id, copy);
    this.idByHash.set(copy.hash, copy.id);
    for (const name of indexNames(copy)) this.index(name).add(copy.id);
    if (copy.dueAt !== undefined) this.dueIndex.add(dueMember(copy));
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
    this.checkFence(opts);
    this.checkReplace(record, expectedVersion, opts);
    this.overwrite(record);
  }

  async rotate(write: RotationWrite, opts: Pick<WriteOptions, 'fence'> = {}): Promise<void> {
    this.assertOpen();
    this.checkFence(opts);
    // Check both writes before doing either: all or nothing.
    this.checkReplace(write.retired, write.expectedVersion, {});
    if (write.successor.id === write.retired.id) throw new RangeError('a successor needs its own id');
    if (this.byId.has(write.successor.id)) throw new AlreadyExistsError(`key ${write.successor.id} already exists`);
    if (this.idByHash.has(write.successor.hash)) throw new AlreadyExistsError('a key with this hash already exists');
    this.overwrite(write.retired);
    this.insert(write.successor, {});
    if (write.sealed) this.sealed.set(write.successor.id, { ...write.sealed });
  }

  async due(now: number, limit: number): Promise<string[]> {
    this.assertOpen();
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`due limit must be a positive integer, got ${limit}`);
    const out: string[] = [];
    const last = `${pad(now)}:~`;
    for (const member of this.dueIndex.after(undefined)) {
      if (member > last || out.length === limit) break;
      out.push(member.slice(member.indexOf(':') + 1));
    }
    return out;
  }

  async readSealedSecret(keyId: string): Promise<SealedSecret | undefined> {
    this.assertOpen();
    const s = this.sealed.get(keyId);
    return s !== undefined && this.now() < s.expiresAt ? { ...s } : undefined;
  }

  async takeSealedSecret(keyId: string): Promise<SealedSecret | undefined> {
    this.assertOpen();
    const s = this.sealed.get(keyId);
    this.sealed.delete(keyId);
    return s !== undefined && this.now() < s.expiresAt ? s : undefined;
  }

  private checkReplace(record: KeyRecord, expectedVersion: number, opts: WriteOptions): void {
    const current = this.byId.get(record.id);
    if (!current) throw new NotFoundError(`key ${record.id} not found`);
    if (current.version !== expectedVersion) {
      throw new ConflictError(`key ${record.id} was changed concurrently (version ${current.version}, expected ${expectedVersion})`);
    }
    if (current.hash !== record.hash) throw new RangeError(`replace must not change the hash of key ${record.id}`);
    if (record.state === 'active' && current.state !== 'active') this.checkQuota(record.service, opts);
  }

  private overwrite(record: KeyRecord): void {
    const current = this.byId.get(record.id)!;
    // Usage only moves through addUsage; keep the stored figures.
    const next = clone({ ...record, usageCount: current.usageCount, lastUsedAt: current.lastUsedAt });
    if (next.lastUsedAt === undefined) delete (next as { lastUsedAt?: number }).lastUsedAt;
    for (const name of indexNames(current)) this.index(name).remove(current.id);
    for (const name of indexNames(next)) this.index(name).add(next.id);
    if (current.dueAt !== undefined) this.dueIndex.remove(dueMember(current));
    if (next.dueAt !== undefined) this.dueIndex.add(dueMember(next));
    this.byId.set(next.id, next);
  }

  async delete(id: string): Promise<KeyRecord | undefined> {
    this.assertOpen();
    const current = this.byId.get(id);
    if (!current) return undefined;
    this.byId.delete(id);
    this.idByHash.delete(current.hash);
    for (const name of indexNames(current)) this.index(name).remove(id);
    if (current.dueAt !== undefined) this.dueIndex.remove(dueMember(current));
    this.sealed.delete(id);
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

  private checkFence(opts: WriteOptions): void {
    const f = opts.fence;
    if (f === undefined) return;
    if (this.opts.leases === undefined) throw new RangeError('fenced write on a MemoryKeyStore built without a lease table');
    if (this.opts.leases.current(f.lease, this.now()) !== f.value) throw new FencedError(`lease ${f.lease} is no longer held by ${f.value}`);
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

function pad(ms: number): string {
  return String(Math.max(0, Math.floor(ms))).padStart(15, '0');
}

function dueMember(r: KeyRecord): string {
  return `${pad(r.dueAt!)}:${r.id}`;
}

function clone(r: KeyRecord): KeyRecord {
  return { ...r, scopes: [...r.scopes], metadata: { ...r.metadata } };
}
