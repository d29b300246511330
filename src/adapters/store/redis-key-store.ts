import { toStoreError, type RedisClient } from '../redis/redis-client';
import { evalScript, luaScript, type LuaScript } from '../redis/lua-script';
import { AlreadyExistsError, ConflictError, NotFoundError } from '../../domain/errors';
import { KEY_STATES, type KeyRecord, type KeyState } from '../../domain/key-record';
import { quotaExceeded, type KeyStore, type ListPage, type ListQuery, type UsageDelta, type WriteOptions } from '../../ports/key-store';
import { chooseIndex } from './memory-key-store';

/*
 * The Redis store of record.
 *
 * Key layout (P = `{kw}:`, `kw` being the `keyPrefix` option):
 *
 *   P r:<hash>      HASH    the record, named by its key hash, so that validation (getByHash) is
 *                           a single HGETALL: one round trip, no script on the hot path.
 *   P id:<id>       STRING  the record's hash: the id -> record pointer used by admin calls.
 *   P i:<index>     ZSET    score 0, member = key id; <index> is one of MemoryKeyStore's names
 *                           (`s:<svc>`, `s:<svc>|o:<owner>`, `s:<svc>|st:<state>`, svc also `*`
 *                           for "all services") and `chooseIndex` picks the one a list reads.
 *                           Ids are ULIDs of one length, so lexicographic order is creation order
 *                           and a page is ZRANGEBYLEX `(after` `+` LIMIT: O(log n + page).
 *                           Services never contain `|`, so the names cannot collide.
 *
 * Record fields: v (format version, "1"), id, h (hash), ver (CAS version), svc, own, st (the
 * fields scripts read), d (JSON of the descriptive rest, compact keys), u (usage count) and lu
 * (last use, ms; absent until first used). u and lu are written only by create and addUsage
 * (HINCRBY and a max-update), so replace never touches them. A reader meeting a `v` it does not
 * know refuses the record instead of guessing; a later format adds a version and reads both.
 *
 * Atomicity: create, replace, delete, getById, list pages and addUsage are Lua scripts (EVALSHA,
 * falling back to EVAL on NOSCRIPT), so a record, its pointer and its six index entries change
 * together. Scripts check everything before their first write, so an error cannot stop one
 * halfway.
 *
 * Cluster: every key carries the single hash tag `{kw}`, so all keyward keys live in one slot.
 * That is what lets a script follow the id pointer to the record and its old index entries
 * (names it can only learn inside the script) and still be atomic and legal in a cluster. The
 * price is that one shard holds all key data; key records are small and admin writes rare, and
 * the hot-path traffic that does not need atomicity with the records (usage counters, rate-limit
 * windows) can live under other tags later. Scripts declare the keys they know up front, so a
 * cluster client routes them to the slot's owner.
 *
 * Errors: any failure to reach Redis (refused, reset, timeouts, "Connection is closed",
 * MaxRetriesPerRequestError, LOADING, READONLY during a failover...) is a StoreUnavailableError
 * carrying the original as `cause`. A command that timed out may still have run on the server:
 * like any remote store, an unavailable write is "unknown outcome", never "half done".
 */


export interface RedisKeyStoreOptions {
  redis: RedisClient;
  /** The hash tag of every key, without braces. Default `kw`. */
  keyPrefix?: string;
  /** Index entries one list script examines at most; bounds the time a script holds Redis. */
  scanBatch?: number;
}

const FORMAT_VERSION = '1';
/** How long an applied usage batch id is remembered (retries come within seconds). */
const USAGE_BATCH_TTL_MS = 86_400_000;

function script(body: string): LuaScript {
  return luaScript(`${LUA_HELPERS}\n${body}`);
}

/** The six index names of a record, in Lua; must match `indexNames` below. */
const LUA_HELPERS = `
local function indexes(p, svc, own, st)
  local out = {}
  for _, s in ipairs({svc, '*'}) do
    local b = p .. 'i:s:' .. s
    out[#out + 1] = b
    out[#out + 1] = b .. '|o:' .. own
    out[#out + 1] = b .. '|st:' .. st
  end
  return out
end`;

/**
 * KEYS: pointer, record, 6 indexes (KEYS[5] = the service's index of the record's state).
 * ARGV: id, hash, most active keys of the service (0: no quota), field/value pairs.
 */
const CREATE = script(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 'ID_TAKEN' end
if redis.call('EXISTS', KEYS[2]) == 1 then return 'HASH_TAKEN' end
local quota = tonumber(ARGV[3])
if quota > 0 and redis.call('ZCARD', KEYS[5]) >= quota then return 'QUOTA' end
redis.call('HSET', KEYS[2], unpack(ARGV, 4))
redis.call('SET', KEYS[1], ARGV[2])
for i = 3, #KEYS do redis.call('ZADD', KEYS[i], 0, ARGV[1]) end
return 'OK'`);

/**
 * KEYS: pointer, record (new hash), 6 new indexes (KEYS[5] = the service's index of the new
 * state). ARGV: prefix, id, expected version, most active keys when the record becomes active
 * (0: no quota), pairs.
 */
const REPLACE = script(`
local hash = redis.call('GET', KEYS[1])
if not hash then return 'NOT_FOUND' end
local rec = ARGV[1] .. 'r:' .. hash
local cur = redis.call('HMGET', rec, 'ver', 'svc', 'own', 'st')
if cur[1] ~= ARGV[3] then return 'CONFLICT:' .. tostring(cur[1]) end
if rec ~= KEYS[2] then return 'HASH_CHANGED' end
local quota = tonumber(ARGV[4])
if quota > 0 and cur[4] ~= 'active' and redis.call('ZCARD', KEYS[5]) >= quota then return 'QUOTA' end
for _, k in ipairs(indexes(ARGV[1], cur[2], cur[3], cur[4])) do redis.call('ZREM', k, ARGV[2]) end
redis.call('HSET', rec, unpack(ARGV, 5))
for i = 3, #KEYS do redis.call('ZADD', KEYS[i], 0, ARGV[2]) end
return 'OK'`);

/** KEYS: pointer. ARGV: prefix, id. Returns the removed record's fields, or nil. */
const DELETE = script(`
local hash = redis.call('GET', KEYS[1])
if not hash then return false end
local rec = ARGV[1] .. 'r:' .. hash
local all = redis.call('HGETALL', rec)
local cur = redis.call('HMGET', rec, 'svc', 'own', 'st')
if cur[1] and cur[2] and cur[3] then
  for _, k in ipairs(indexes(ARGV[1], cur[1], cur[2], cur[3])) do redis.call('ZREM', k, ARGV[2]) end
end
redis.call('DEL', rec, KEYS[1])
return all`);

/** KEYS: pointer. ARGV: prefix. */
const GET_BY_ID = script(`
local hash = redis.call('GET', KEYS[1])
if not hash then return false end
return redis.call('HGETALL', ARGV[1] .. 'r:' .. hash)`);

/**
 * KEYS: index. ARGV: prefix, range start ('-' or '(<id>'), ids to examine at most, state filter
 * or '', records wanted. Returns {1 if the index is exhausted else 0, last examined id, records}.
 */
const LIST = script(`
local limit = tonumber(ARGV[3])
local wanted = tonumber(ARGV[5])
local ids = redis.call('ZRANGEBYLEX', KEYS[1], ARGV[2], '+', 'LIMIT', 0, limit)
local out = {#ids < limit and 1 or 0, ''}
for _, id in ipairs(ids) do
  out[2] = id
  local hash = redis.call('GET', ARGV[1] .. 'id:' .. id)
  if hash then
    local rec = ARGV[1] .. 'r:' .. hash
    if ARGV[4] == '' or redis.call('HGET', rec, 'st') == ARGV[4] then
      out[#out + 1] = redis.call('HGETALL', rec)
      if #out - 2 >= wanted then
        if id ~= ids[#ids] then out[1] = 0 end
        return out
      end
    end
  end
end
return out`);

/**
 * KEYS: the batch marker, then one pointer per delta. ARGV: prefix, marker TTL (ms), then count
 * and last-used time per delta. A batch already applied (marker present) is skipped, so a retry
 * after a timeout cannot count twice. A key without a pointer was deleted: its usage is dropped,
 * never written to a partial record.
 */
const ADD_USAGE = script(`
if not redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[2]) then return -1 end
for i = 2, #KEYS do
  local hash = redis.call('GET', KEYS[i])
  if hash then
    local rec = ARGV[1] .. 'r:' .. hash
    if redis.call('EXISTS', rec) == 1 then
      local t = ARGV[2 * i]
      redis.call('HINCRBY', rec, 'u', ARGV[2 * i - 1])
      local old = redis.call('HGET', rec, 'lu')
      if not old or tonumber(t) > tonumber(old) then redis.call('HSET', rec, 'lu', t) end
    end
  end
end
return #KEYS`);


export class RedisKeyStore implements KeyStore {
  private readonly redis: RedisClient;
  private readonly p: string;
  private readonly scanBatch: number;
  private closed = false;

  constructor(opts: RedisKeyStoreOptions) {
    const tag = opts.keyPrefix ?? 'kw';
    if (!/^[^{}\s]+$/.test(tag)) {
      throw new RangeError(`invalid keyPrefix ${JSON.stringify(tag)}: no braces or spaces`);
    }
    if ((opts.redis.options as { keyPrefix?: string }).keyPrefix) {
      // scripts build key names themselves, which ioredis would not prefix
      throw new RangeError('the ioredis keyPrefix option is not supported; use the keyPrefix of RedisKeyStore');
    }
    this.redis = opts.redis;
    this.p = `{${tag}}:`;
    this.scanBatch = Math.max(1, Math.floor(opts.scanBatch ?? 500));
  }

  async create(record: KeyRecord, opts: WriteOptions = {}): Promise<void> {
    // addUsage HINCRBYs `u` inside a script: a non-integer there would fail it halfway
    if (!Number.isSafeInteger(record.usageCount)) {
      throw new RangeError(`usageCount must be an integer, got ${record.usageCount}`);
    }
    const fields = [...encode(record), 'u', String(record.usageCount)];
    if (record.lastUsedAt !== undefined) fields.push('lu', String(record.lastUsedAt));
    const keys = [this.idKey(record.id), this.recordKey(record.hash), ...this.indexKeys(record)];
    const quota = record.state === 'active' ? (opts.maxActiveKeys ?? 0) : 0;
    const reply = await this.run('create', () => evalScript(this.redis, CREATE, keys, [record.id, record.hash, String(quota), ...fields]));
    if (reply === 'QUOTA') throw quotaExceeded(record.service, quota);
    if (reply === 'ID_TAKEN') throw new AlreadyExistsError(`key ${record.id} already exists`);
    if (reply === 'HASH_TAKEN') throw new AlreadyExistsError('a key with this hash already exists');
    expectOk('create', reply);
  }

  async getById(id: string): Promise<KeyRecord | undefined> {
    const reply = await this.run('getById', () => evalScript(this.redis, GET_BY_ID, [this.idKey(id)], [this.p]));
    return decode(reply);
  }

  async getByHash(hash: string): Promise<KeyRecord | undefined> {
    const reply = await this.run('getByHash', () => this.redis.hgetall(this.recordKey(hash)));
    return decode(reply);
  }

  async replace(record: KeyRecord, expectedVersion: number, opts: WriteOptions = {}): Promise<void> {
    const keys = [this.idKey(record.id), this.recordKey(record.hash), ...this.indexKeys(record)];
    const quota = record.state === 'active' ? (opts.maxActiveKeys ?? 0) : 0;
    const args = [this.p, record.id, String(expectedVersion), String(quota), ...encode(record)];
    const reply = await this.run('replace', () => evalScript(this.redis, REPLACE, keys, args));
    if (reply === 'NOT_FOUND') throw new NotFoundError(`key ${record.id} not found`);
    if (reply === 'QUOTA') throw quotaExceeded(record.service, quota);
    if (typeof reply === 'string' && reply.startsWith('CONFLICT:')) {
      throw new ConflictError(
        `key ${record.id} was changed concurrently (version ${reply.slice(9)}, expected ${expectedVersion})`,
      );
    }
    if (reply === 'HASH_CHANGED') throw new Error(`replace cannot change the hash of key ${record.id}`);
    expectOk('replace', reply);
  }

  async delete(id: string): Promise<KeyRecord | undefined> {
    const reply = await this.run('delete', () => evalScript(this.redis, DELETE, [this.idKey(id)], [this.p, id]));
    return decode(reply);
  }

  async list(query: ListQuery): Promise<ListPage> {
    if (!Number.isSafeInteger(query.limit) || query.limit < 1) {
      throw new RangeError(`list limit must be a positive integer, got ${query.limit}`);
    }
    const { name, residualState } = chooseIndex(query);
    const index = this.p + 'i:' + name;
    const want = query.limit + 1; // one more than the page tells whether another page exists
    const found: KeyRecord[] = [];
    let cursor = query.after;
    while (found.length < want) {
      const count = residualState === undefined ? Math.min(want - found.length, this.scanBatch) : this.scanBatch;
      const start = cursor === undefined ? '-' : `(${cursor}`;
      const args = [this.p, start, String(count), residualState ?? '', String(want - found.length)];
      const reply = await this.run('list', () => evalScript(this.redis, LIST, [index], args));
      if (!Array.isArray(reply) || reply.length < 2) throw new Error('redis list script: unexpected reply');
      const [exhausted, last, ...rows] = reply as [number, string, ...unknown[]];
      for (const row of rows) {
        const r = decode(row);
        if (r) found.push(r);
      }
      if (Number(exhausted) === 1) break;
      cursor = String(last);
    }
    if (found.length <= query.limit) return { records: found };
    const records = found.slice(0, query.limit);
    return { records, nextAfter: records[records.length - 1].id };
  }

  async addUsage(deltas: readonly UsageDelta[], batchId: string): Promise<void> {
    if (deltas.length === 0) return;
    const keys: string[] = [`${this.p}ub:${batchId}`];
    const args: string[] = [this.p, String(USAGE_BATCH_TTL_MS)];
    for (const d of deltas) {
      if (!Number.isSafeInteger(d.count) || !Number.isFinite(d.lastUsedAt)) {
        throw new RangeError(`invalid usage delta for ${d.keyId}: count ${d.count}, lastUsedAt ${d.lastUsedAt}`);
      }
      keys.push(this.idKey(d.keyId));
      args.push(String(d.count), String(d.lastUsedAt));
    }
    await this.run('addUsage', () => evalScript(this.redis, ADD_USAGE, keys, args));
  }

  async ping(): Promise<void> {
    await this.run('ping', () => this.redis.ping());
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    try {
      await this.redis.quit();
    } catch {
      this.redis.disconnect(); // not connected: nothing to say goodbye to
    }
  }

  private idKey(id: string): string {
    return `${this.p}id:${id}`;
  }

  private recordKey(hash: string): string {
    return `${this.p}r:${hash}`;
  }

  private indexKeys(r: KeyRecord): string[] {
    return indexNames(r).map((n) => `${this.p}i:${n}`);
  }


  private async run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toStoreError(op, err);
    }
  }
}

/** Same names as MemoryKeyStore's indexes (and LUA_HELPERS): each key under its service and `*`. */
function indexNames(r: KeyRecord): string[] {
  const names: string[] = [];
  for (const s of [r.service, '*']) names.push(`s:${s}`, `s:${s}|o:${r.owner}`, `s:${s}|st:${r.state}`);
  return names;
}


function expectOk(op: string, reply: unknown): void {
  if (reply !== 'OK') throw new Error(`redis ${op} script: unexpected reply ${JSON.stringify(reply)}`);
}

/** The descriptive part of a record, with compact keys; absent optional fields are left out. */
interface Details {
  n: string;
  p: string;
  hi: string;
  sc: string[];
  m: Record<string, string>;
  ca: number;
  ua: number;
  nb?: number;
  ea?: number;
  ra?: number;
  rr?: string;
  /** policy id */
  po?: string;
  /** key-level starting credits */
  cr?: number;
}

/** Every field but usage, as HSET field/value pairs. */
function encode(r: KeyRecord): string[] {
  const d: Details = {
    n: r.name,
    p: r.prefix,
    hi: r.hint,
    sc: [...r.scopes],
    m: { ...r.metadata },
    ca: r.createdAt,
    ua: r.updatedAt,
    ...(r.notBefore !== undefined && { nb: r.notBefore }),
    ...(r.expiresAt !== undefined && { ea: r.expiresAt }),
    ...(r.revokedAt !== undefined && { ra: r.revokedAt }),
    ...(r.revokeReason !== undefined && { rr: r.revokeReason }),
    ...(r.policyId !== undefined && { po: r.policyId }),
    ...(r.credits !== undefined && { cr: r.credits }),
  };
  return [
    'v', FORMAT_VERSION,
    'id', r.id,
    'h', r.hash,
    'ver', String(r.version),
    'svc', r.service,
    'own', r.owner,
    'st', r.state,
    'd', JSON.stringify(d),
  ];
}

/** A record from HGETALL (object) or a script (flat array); undefined when there is none. */
function decode(reply: unknown): KeyRecord | undefined {
  if (reply === null || reply === undefined) return undefined;
  const f = Array.isArray(reply) ? pairs(reply) : (reply as Record<string, string>);
  if (Object.keys(f).length === 0) return undefined;
  if (f.v !== FORMAT_VERSION) throw new Error(`key record ${f.id ?? '?'} has unsupported format version ${f.v}`);
  if (!KEY_STATES.includes(f.st as KeyState)) throw new Error(`key record ${f.id} has invalid state ${f.st}`);
  const d = JSON.parse(f.d) as Details;
  const r: { -readonly [K in keyof KeyRecord]: KeyRecord[K] } = {
    id: f.id,
    hash: f.h,
    service: f.svc,
    owner: f.own,
    name: d.n,
    prefix: d.p,
    hint: d.hi,
    scopes: d.sc,
    metadata: d.m,
    state: f.st as KeyState,
    createdAt: d.ca,
    updatedAt: d.ua,
    usageCount: Number(f.u ?? 0),
    version: Number(f.ver),
  };
  if (d.nb !== undefined) r.notBefore = d.nb;
  if (d.ea !== undefined) r.expiresAt = d.ea;
  if (d.ra !== undefined) r.revokedAt = d.ra;
  if (d.rr !== undefined) r.revokeReason = d.rr;
  if (d.po !== undefined) r.policyId = d.po;
  if (d.cr !== undefined) r.credits = d.cr;
  if (f.lu !== undefined) r.lastUsedAt = Number(f.lu);
  return r;
}

function pairs(flat: unknown[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) out[String(flat[i])] = String(flat[i + 1]);
  return out;
}

// Re-exported for callers that predate src/adapters/redis/.
export { createRedisClient, waitUntilReady, type RedisClient, type RedisClientOptions } from '../redis/redis-client';
