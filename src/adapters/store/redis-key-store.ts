import { Command } from 'ioredis';
import { toStoreError, type RedisClient } from '../redis/redis-client';
import { turnBatcherFor, type TurnBatcher } from '../redis/turn-batcher';
import { evalScript, luaScript, type LuaScript } from '../redis/lua-script';
import { AlreadyExistsError, ConflictError, FencedError, NotFoundError } from '../../domain/errors';
import { KEY_STATES, type KeyRecord, type KeyState } from '../../domain/key-record';
import {
  quotaExceeded,
  type Fence,
  type KeyStore,
  type ListPage,
  type ListQuery,
  type RotationWrite,
  type SealedSecret,
  type UsageDelta,
  type WriteOptions,
} from '../../ports/key-store';
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
 *   P due           ZSET    score = the record's `dueAt`, member = key id: the lifecycle
 *                           scheduler's index. `due` is ZRANGEBYSCORE -inf now LIMIT: O(log n +
 *                           limit), so a tick with nothing due costs the same at 1M keys as at 10.
 *                           Keys without a `dueAt` have no entry.
 *   P sealed:<id>   STRING  the sealed secret of an automatically rotated successor (JSON
 *                           {s: sealed form, e: expiresAt}), PEXPIREAT its `expiresAt`; taken
 *                           once with GETDEL. Never the secret itself: the sealer's ciphertext.
 *   P <name>:lease  STRING  RedisLease's key (redis-lease.ts), read by fenced writes only.
 *
 * Record fields: v (format version), id, h (hash), ver (CAS version), svc, own, st (the fields
 * scripts read), d (JSON of the descriptive rest, compact keys), u (usage count) and lu (last
 * use, ms; absent until first used). u and lu are written only by create and addUsage (HINCRBY
 * and a max-update), so replace never touches them. A reader meeting a `v` it does not know
 * refuses the record instead of guessing; a later format adds a version and reads both.
 *   v "1": the original fields.
 *   v "2": `d` may also hold the rotation and lifecycle fields (rotatedTo, rotatedFrom,
 *          rotatedAt, graceEndsAt, limitsId, dueAt, expiryHandledAt, rotationNoticeAt). A record
 *          is written as "2" only when it has one of them, so a sidecar of the previous release
 *          (during a rolling upgrade) still reads every record it can represent, and refuses the
 *          others rather than dropping their rotation state on its next write. This version
 *          reads both.
 *
 * Atomicity: create, replace, rotate, delete, getById, list pages and addUsage are Lua scripts
 * (EVALSHA, falling back to EVAL on NOSCRIPT), so a record, its pointer, its six index entries
 * and its due entry change together (rotate: both records, and the sealed secret). Scripts check
 * everything before their first write, and arguments that Redis could refuse mid-script (scores,
 * expiry times) are checked in TypeScript before the call, so an error cannot stop one halfway.
 *
 * Fencing: a write with `opts.fence` first compares `GET P <fence.lease>:lease` to the fence
 * value in the same script, so a lease holder that paused past its lease writes nothing.
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

/** The format written for records without rotation fields, and the one for records with them. */
const FORMAT_V1 = '1';
const FORMAT_V2 = '2';
/** How long an applied usage batch id is remembered (retries come within seconds). */
const USAGE_BATCH_TTL_MS = 86_400_000;

function script(body: string): LuaScript {
  return luaScript(`${LUA_HELPERS}\n${body}`);
}

/*
 * Lua helpers shared by the write scripts. `indexes` must match `indexNames` below. Write scripts
 * take their keys in a fixed order: pointer, record, due index, the six indexes of the record as
 * written (its service's index of its state is the third of them), and last, only when the write
 * is fenced, the lease key (its expected value is an argument).
 */
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
end

-- A fenced write goes ahead only while the lease key holds the fence value.
local function fenced(lease, value)
  return lease ~= nil and redis.call('GET', lease) ~= value
end

local function set_due(due, id, at)
  if at == '' then redis.call('ZREM', due, id) else redis.call('ZADD', due, at, id) end
end

-- Compare-and-set check of a replace: an error reply, or nil and the stored {ver, svc, own, st}.
local function check_replace(p, ptr, rec, expected)
  local hash = redis.call('GET', ptr)
  if not hash then return 'NOT_FOUND' end
  local stored = p .. 'r:' .. hash
  local cur = redis.call('HMGET', stored, 'ver', 'svc', 'own', 'st')
  if cur[1] ~= expected then return 'CONFLICT:' .. tostring(cur[1]) end
  if stored ~= rec then return 'HASH_CHANGED' end
  return nil, cur
end

-- k: the first of the six new index keys; fields: HSET pairs.
local function write_replace(p, id, rec, due, k, cur, at, fields)
  if cur[2] and cur[3] and cur[4] then
    for _, old in ipairs(indexes(p, cur[2], cur[3], cur[4])) do redis.call('ZREM', old, id) end
  end
  redis.call('HSET', rec, unpack(fields))
  for i = k, k + 5 do redis.call('ZADD', KEYS[i], 0, id) end
  set_due(due, id, at)
end

local function check_create(ptr, rec)
  if redis.call('EXISTS', ptr) == 1 then return 'ID_TAKEN' end
  if redis.call('EXISTS', rec) == 1 then return 'HASH_TAKEN' end
  return nil
end

local function write_create(ptr, rec, due, k, id, hash, at, fields)
  redis.call('HSET', rec, unpack(fields))
  redis.call('SET', ptr, hash)
  for i = k, k + 5 do redis.call('ZADD', KEYS[i], 0, id) end
  set_due(due, id, at)
end

local function slice(t, from, to)
  local out = {}
  for i = from, to do out[#out + 1] = t[i] end
  return out
end`;

/**
 * KEYS: pointer, record, due, 6 indexes (KEYS[6] = the service's index of the record's state),
 * [lease]. ARGV: id, hash, most active keys of the service (0: no quota), dueAt or '', fence
 * value or '', field/value pairs.
 */
const CREATE = script(`
if fenced(KEYS[10], ARGV[5]) then return 'FENCED' end
local err = check_create(KEYS[1], KEYS[2])
if err then return err end
local quota = tonumber(ARGV[3])
if quota > 0 and redis.call('ZCARD', KEYS[6]) >= quota then return 'QUOTA' end
write_create(KEYS[1], KEYS[2], KEYS[3], 4, ARGV[1], ARGV[2], ARGV[4], slice(ARGV, 6, #ARGV))
return 'OK'`);

/**
 * KEYS: pointer, record (new hash), due, 6 new indexes (KEYS[6] = the service's index of the
 * new state), [lease]. ARGV: prefix, id, expected version, most active keys when the record
 * becomes active (0: no quota), dueAt or '', fence value or '', pairs.
 */
const REPLACE = script(`
if fenced(KEYS[10], ARGV[6]) then return 'FENCED' end
local err, cur = check_replace(ARGV[1], KEYS[1], KEYS[2], ARGV[3])
if err then return err end
local quota = tonumber(ARGV[4])
if quota > 0 and cur[4] ~= 'active' and redis.call('ZCARD', KEYS[6]) >= quota then return 'QUOTA' end
write_replace(ARGV[1], ARGV[2], KEYS[2], KEYS[3], 4, cur, ARGV[5], slice(ARGV, 7, #ARGV))
return 'OK'`);

/**
 * Rotation: replace the retired record and create its successor, all checks first.
 * KEYS: retired pointer, retired record, due, 6 retired indexes, successor pointer (10),
 * successor record (11), 6 successor indexes (12-17), sealed secret (18), [lease (19)].
 * ARGV: prefix, retired id, expected version, retired dueAt or '', successor id, successor hash,
 * successor dueAt or '', sealed value or '', sealed expiresAt, fence value or '', n = number of
 * retired pairs' elements, the retired pairs, then the successor pairs.
 */
const ROTATE = script(`
if fenced(KEYS[19], ARGV[10]) then return 'FENCED' end
local err, cur = check_replace(ARGV[1], KEYS[1], KEYS[2], ARGV[3])
if err then return err end
err = check_create(KEYS[10], KEYS[11])
if err then return err end
local n = tonumber(ARGV[11])
write_replace(ARGV[1], ARGV[2], KEYS[2], KEYS[3], 4, cur, ARGV[4], slice(ARGV, 12, 11 + n))
write_create(KEYS[10], KEYS[11], KEYS[3], 12, ARGV[5], ARGV[6], ARGV[7], slice(ARGV, 12 + n, #ARGV))
if ARGV[8] ~= '' then
  redis.call('SET', KEYS[18], ARGV[8])
  redis.call('PEXPIREAT', KEYS[18], ARGV[9])
end
return 'OK'`);

/** KEYS: pointer, due, sealed secret. ARGV: prefix, id. Returns the removed record's fields, or nil. */
const DELETE = script(`
local hash = redis.call('GET', KEYS[1])
if not hash then return false end
local rec = ARGV[1] .. 'r:' .. hash
local all = redis.call('HGETALL', rec)
local cur = redis.call('HMGET', rec, 'svc', 'own', 'st')
if cur[1] and cur[2] and cur[3] then
  for _, k in ipairs(indexes(ARGV[1], cur[1], cur[2], cur[3])) do redis.call('ZREM', k, ARGV[2]) end
end
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('DEL', rec, KEYS[1], KEYS[3])
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
  private readonly batcher: TurnBatcher;
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
    this.batcher = turnBatcherFor(opts.redis);
  }

  async create(record: KeyRecord, opts: WriteOptions = {}): Promise<void> {
    const fields = createFields(record);
    const [fenceKeys, fenceValue] = this.fenceArgs(opts.fence);
    const keys = [this.idKey(record.id), this.recordKey(record.hash), this.dueKey(), ...this.indexKeys(record), ...fenceKeys];
    const quota = record.state === 'active' ? (opts.maxActiveKeys ?? 0) : 0;
    const args = [record.id, record.hash, String(quota), dueArg(record), fenceValue, ...fields];
    const reply = await this.run('create', () => evalScript(this.redis, CREATE, keys, args));
    if (reply === 'QUOTA') throw quotaExceeded(record.service, quota);
    this.checkWriteReply('create', record, reply);
  }

  async getById(id: string): Promise<KeyRecord | undefined> {
    const reply = await this.run('getById', () => evalScript(this.redis, GET_BY_ID, [this.idKey(id)], [this.p]));
    return decode(reply);
  }

  /**
   * The cache-miss path of every validation: one HGETALL sent as a prepared Command (the
   * generated method costs an options object, a rest array and the auto-pipelining test per
   * call), written with the other commands of its event-loop turn in one system call.
   */
  getByHash(hash: string): Promise<KeyRecord | undefined> {
    this.batcher.corkUntilTurnEnds();
    const sent = this.redis.sendCommand(new Command('hgetall', [this.recordKey(hash)], { replyEncoding: 'utf8' })) as Promise<unknown>;
    return sent.then(decode, (err: unknown) => {
      throw toStoreError('getByHash', err);
    });
  }

  async replace(record: KeyRecord, expectedVersion: number, opts: WriteOptions = {}): Promise<void> {
    const [fenceKeys, fenceValue] = this.fenceArgs(opts.fence);
    const keys = [this.idKey(record.id), this.recordKey(record.hash), this.dueKey(), ...this.indexKeys(record), ...fenceKeys];
    const quota = record.state === 'active' ? (opts.maxActiveKeys ?? 0) : 0;
    const args = [this.p, record.id, String(expectedVersion), String(quota), dueArg(record), fenceValue, ...encode(record)];
    const reply = await this.run('replace', () => evalScript(this.redis, REPLACE, keys, args));
    if (reply === 'QUOTA') throw quotaExceeded(record.service, quota);
    this.checkWriteReply('replace', record, reply, expectedVersion);
  }

  async rotate(write: RotationWrite, opts: Pick<WriteOptions, 'fence'> = {}): Promise<void> {
    const { retired, successor, sealed } = write;
    if (successor.id === retired.id) throw new RangeError('a successor needs its own id');
    if (sealed !== undefined && (!Number.isSafeInteger(sealed.expiresAt) || sealed.expiresAt <= 0)) {
      // PEXPIREAT would refuse it after the records were written
      throw new RangeError(`sealed.expiresAt must be a positive integer (ms), got ${sealed.expiresAt}`);
    }
    const retiredFields = encode(retired);
    const successorFields = createFields(successor);
    const [fenceKeys, fenceValue] = this.fenceArgs(opts.fence);
    const keys = [
      this.idKey(retired.id), this.recordKey(retired.hash), this.dueKey(), ...this.indexKeys(retired),
      this.idKey(successor.id), this.recordKey(successor.hash), ...this.indexKeys(successor),
      this.sealedKey(successor.id), ...fenceKeys,
    ];
    const args = [
      this.p, retired.id, String(write.expectedVersion), dueArg(retired),
      successor.id, successor.hash, dueArg(successor),
      sealed === undefined ? '' : JSON.stringify({ s: sealed.sealed, e: sealed.expiresAt } satisfies StoredSealed),
      String(sealed?.expiresAt ?? 0), fenceValue,
      String(retiredFields.length), ...retiredFields, ...successorFields,
    ];
    const reply = await this.run('rotate', () => evalScript(this.redis, ROTATE, keys, args));
    // The retired record's errors name it; taken ids and hashes are the successor's.
    this.checkWriteReply('rotate', reply === 'ID_TAKEN' || reply === 'HASH_TAKEN' ? successor : retired, reply, write.expectedVersion);
  }

  async due(now: number, limit: number): Promise<string[]> {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`due limit must be a positive integer, got ${limit}`);
    if (!Number.isFinite(now)) throw new RangeError(`due now must be a finite time, got ${now}`);
    return this.run('due', () => this.redis.zrangebyscore(this.dueKey(), '-inf', String(now), 'LIMIT', 0, limit));
  }

  async readSealedSecret(keyId: string): Promise<SealedSecret | undefined> {
    const raw = await this.run('readSealedSecret', () => this.redis.get(this.sealedKey(keyId)));
    if (raw === null) return undefined;
    const v = JSON.parse(raw) as StoredSealed;
    return { sealed: v.s, expiresAt: v.e };
  }

  async takeSealedSecret(keyId: string): Promise<SealedSecret | undefined> {
    // GETDEL: the read and the removal are one command, so two claims cannot both get it; Redis
    // has already dropped it at `expiresAt` (PEXPIREAT).
    const raw = await this.run('takeSealedSecret', () => this.redis.getdel(this.sealedKey(keyId)));
    if (raw === null) return undefined;
    const v = JSON.parse(raw) as StoredSealed;
    return { sealed: v.s, expiresAt: v.e };
  }

  async delete(id: string): Promise<KeyRecord | undefined> {
    const keys = [this.idKey(id), this.dueKey(), this.sealedKey(id)];
    const reply = await this.run('delete', () => evalScript(this.redis, DELETE, keys, [this.p, id]));
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

  private dueKey(): string {
    return `${this.p}due`;
  }

  private sealedKey(id: string): string {
    return `${this.p}sealed:${id}`;
  }

  /** The lease key to declare (none when unfenced) and the value it must hold ('' when unfenced). */
  private fenceArgs(fence: Fence | undefined): [string[], string] {
    if (fence === undefined) return [[], ''];
    if (!/^[^{}\s]+$/.test(fence.lease)) throw new RangeError(`invalid fence lease name ${JSON.stringify(fence.lease)}`);
    if (fence.value === '') throw new RangeError('a fence value cannot be empty');
    return [[`${this.p}${fence.lease}:lease`], fence.value];
  }

  /** Maps a write script's refusal to the port's error; `record` is the one the error names. */
  private checkWriteReply(op: string, record: KeyRecord, reply: unknown, expectedVersion?: number): void {
    if (reply === 'OK') return;
    if (reply === 'FENCED') throw new FencedError(`${op} of key ${record.id} refused: the writer's lease is no longer current`);
    if (reply === 'ID_TAKEN') throw new AlreadyExistsError(`key ${record.id} already exists`);
    if (reply === 'HASH_TAKEN') throw new AlreadyExistsError('a key with this hash already exists');
    if (reply === 'NOT_FOUND') throw new NotFoundError(`key ${record.id} not found`);
    if (typeof reply === 'string' && reply.startsWith('CONFLICT:')) {
      throw new ConflictError(`key ${record.id} was changed concurrently (version ${reply.slice(9)}, expected ${expectedVersion})`);
    }
    if (reply === 'HASH_CHANGED') throw new RangeError(`${op} must not change the hash of key ${record.id}`);
    throw new Error(`redis ${op} script: unexpected reply ${JSON.stringify(reply)}`);
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

/** The sealed secret as stored: `s` the sealer's form, `e` its expiry (ms). */
interface StoredSealed {
  s: string;
  e: number;
}

/** A record's `dueAt` as a ZADD score, or '' for none; checked here since ZADD refuses NaN mid-script. */
function dueArg(r: KeyRecord): string {
  if (r.dueAt === undefined) return '';
  if (!Number.isFinite(r.dueAt)) throw new RangeError(`dueAt of key ${r.id} must be a finite time, got ${r.dueAt}`);
  return String(r.dueAt);
}

/** The HSET pairs of a new record: every field, with its starting usage. */
function createFields(r: KeyRecord): string[] {
  // addUsage HINCRBYs `u` inside a script: a non-integer there would fail it halfway
  if (!Number.isSafeInteger(r.usageCount)) throw new RangeError(`usageCount must be an integer, got ${r.usageCount}`);
  const fields = [...encode(r), 'u', String(r.usageCount)];
  if (r.lastUsedAt !== undefined) fields.push('lu', String(r.lastUsedAt));
  return fields;
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
  // Format 2: rotation links and lifecycle bookkeeping (see KeyRecord).
  /** rotatedTo, rotatedFrom, rotatedAt, graceEndsAt */
  rt?: string;
  rf?: string;
  rat?: number;
  ge?: number;
  /** limitsId */
  li?: string;
  /** dueAt, expiryHandledAt, rotationNoticeAt */
  du?: number;
  eh?: number;
  rn?: number;
}

/** The Details keys that only format 2 knows. */
const V2_DETAILS = ['rt', 'rf', 'rat', 'ge', 'li', 'du', 'eh', 'rn'] as const;

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
    ...(r.rotatedTo !== undefined && { rt: r.rotatedTo }),
    ...(r.rotatedFrom !== undefined && { rf: r.rotatedFrom }),
    ...(r.rotatedAt !== undefined && { rat: r.rotatedAt }),
    ...(r.graceEndsAt !== undefined && { ge: r.graceEndsAt }),
    ...(r.limitsId !== undefined && { li: r.limitsId }),
    ...(r.dueAt !== undefined && { du: r.dueAt }),
    ...(r.expiryHandledAt !== undefined && { eh: r.expiryHandledAt }),
    ...(r.rotationNoticeAt !== undefined && { rn: r.rotationNoticeAt }),
  };
  const v2 = V2_DETAILS.some((k) => d[k] !== undefined);
  return [
    'v', v2 ? FORMAT_V2 : FORMAT_V1,
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
  if (f.v !== FORMAT_V1 && f.v !== FORMAT_V2) throw new Error(`key record ${f.id ?? '?'} has unsupported format version ${f.v}`);
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
  if (f.v === FORMAT_V2) {
    if (d.rt !== undefined) r.rotatedTo = d.rt;
    if (d.rf !== undefined) r.rotatedFrom = d.rf;
    if (d.rat !== undefined) r.rotatedAt = d.rat;
    if (d.ge !== undefined) r.graceEndsAt = d.ge;
    if (d.li !== undefined) r.limitsId = d.li;
    if (d.du !== undefined) r.dueAt = d.du;
    if (d.eh !== undefined) r.expiryHandledAt = d.eh;
    if (d.rn !== undefined) r.rotationNoticeAt = d.rn;
  }
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
