import Redis from 'ioredis';
import type { AppendOptions, EventOutbox, OutboxEntry } from '../../ports/event-outbox';
import type { WireEvent } from '../../ports/event-transport';
import { evalScript, luaScript } from '../redis/lua-script';
import { toStoreError, waitUntilReady, type RedisClient } from '../redis/redis-client';
import { NotLeaderError } from './errors';

/*
 * The outbox in a Redis stream, shared by every sidecar of the fleet:
 *
 *   {kw}:outbox   STREAM  one entry per event not yet published: fields v ("1", the format) and
 *                         e (JSON of the WireEvent). The entry id is the outbox sequence.
 *
 * append is XADD (ids increase, so the stream's order is the order the events were committed
 * in, across sidecars); read is XREAD after a sequence, blocking on a connection of its own (a
 * blocking read would hold up every other command on a shared one, and the shared client's
 * command timeout is shorter than the block); ack is XTRIM MINID <next id>, which drops
 * everything up to and including the acknowledged entry, so entries leave in order even when an
 * ack was lost. XADD and XTRIM on one key are atomic each; nothing here needs more.
 *
 * With `lease`, ack runs as a script that first checks the lease still has exactly this relay's
 * value (instance and fencing token), so a relay that lost the lease cannot drop entries.
 *
 * Deduplicated appends (`AppendOptions.dedupe`) run as a script that first sets a marker
 * `{kw}:outbox:seen:<event id>` with SET NX and a TTL (DEDUPE_TTL_MS), and appends only when
 * the marker is new: marker and entry are written together or not at all.
 *
 * Memory: the stream holds what has not been published. When NATS is down for long, it grows by
 * one entry (about the size of the event body) per admin change; it is not capped, because a cap
 * would drop events. Watch `size()` (XLEN).
 *
 * Errors: any failure to reach Redis is a StoreUnavailableError, as in the key store.
 */

const FORMAT_VERSION = '1';

/** KEYS: stream, lease. ARGV: min id to keep, expected lease value. -> entries trimmed, or -1 when the lease is not ours. */
const FENCED_ACK = `
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return -1 end
return redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])`;

/** KEYS: stream, marker. ARGV: marker TTL (ms), then the entry's fields. -> 1 appended, 0 duplicate. */
const DEDUPED_APPEND = luaScript(`
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[1]) then return 0 end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 2))
return 1`);

/** How long a deduplicated event's id is remembered: re-emits come within minutes of a crash. */
const DEDUPE_TTL_MS = 3 * 86_400_000;

/** What fenced acks need of a lease (RedisLease has it). */
export interface FencingLease {
  /** The lease's Redis key; must share the outbox's hash tag. */
  readonly key: string;
  /** The lease's value while this instance holds it, else undefined. */
  holder(): string | undefined;
}

export interface RedisEventOutboxOptions {
  /**
   * The shared client (appends, acks, sizes, non-blocking reads). Not closed by the outbox: it
   * belongs to whoever shares it (the key store closes it).
   */
  redis: RedisClient;
  /** Hash tag of the key, without braces. Default `kw`. */
  keyPrefix?: string;
  /**
   * The connection for blocking reads; the outbox closes it. Default: a duplicate of `redis`
   * without the command timeout (blocking reads get a client-side deadline of their block time
   * plus a grace instead).
   */
  blockingRedis?: RedisClient;
  /** Acks only while this lease is held (checked in Redis); see the file comment. */
  lease?: FencingLease;
}

export class RedisEventOutbox implements EventOutbox {
  readonly key: string;
  private readonly redis: RedisClient;
  private blocking?: RedisClient;
  private closed = false;

  constructor(private readonly opts: RedisEventOutboxOptions) {
    const tag = opts.keyPrefix ?? 'kw';
    if (!/^[^{}\s]+$/.test(tag)) throw new RangeError(`invalid keyPrefix ${JSON.stringify(tag)}: no braces or spaces`);
    this.key = `{${tag}}:outbox`;
    this.redis = opts.redis;
    this.blocking = opts.blockingRedis;
    if (opts.lease && !opts.lease.key.startsWith(`{${tag}}:`)) {
      throw new RangeError(`the lease key ${opts.lease.key} must share the hash tag {${tag}}`);
    }
  }

  async append(event: WireEvent, opts: AppendOptions = {}): Promise<void> {
    const fields = ['v', FORMAT_VERSION, 'e', JSON.stringify(encode(event))];
    try {
      if (opts.dedupe) await evalScript(this.redis, DEDUPED_APPEND, [this.key, `${this.key}:seen:${event.id}`], [String(DEDUPE_TTL_MS), ...fields]);
      else await this.redis.call('XADD', [this.key, '*', ...fields]);
    } catch (err) {
      throw toStoreError('outbox append', err);
    }
  }

  async read(afterSeq: string | undefined, limit: number, blockMs: number): Promise<OutboxEntry[]> {
    if (!Number.isSafeInteger(limit) || limit < 1) throw new RangeError(`limit must be a positive integer, got ${limit}`);
    const after = afterSeq ?? '0';
    if (!/^\d+(-\d+)?$/.test(after)) throw new RangeError(`not an outbox sequence: ${JSON.stringify(after)}`);
    let reply: unknown;
    try {
      if (blockMs > 0) {
        const conn = this.blockingConnection();
        await waitUntilReady(conn, Math.min(Math.max(blockMs, 100), 2000));
        reply = await conn.call('XREAD', ['COUNT', limit, 'BLOCK', Math.ceil(blockMs), 'STREAMS', this.key, after]);
      } else {
        reply = await this.redis.call('XREAD', ['COUNT', limit, 'STREAMS', this.key, after]);
      }
    } catch (err) {
      throw toStoreError('outbox read', err);
    }
    return this.entries(reply);
  }

  async ack(seq: string): Promise<void> {
    const minId = nextId(seq);
    try {
      if (this.opts.lease) {
        const holder = this.opts.lease.holder();
        if (holder === undefined) throw new NotLeaderError('the relay lease is not held: outbox entries stay');
        const r = await this.redis.eval(FENCED_ACK, 2, this.key, this.opts.lease.key, minId, holder);
        if (Number(r) === -1) throw new NotLeaderError('the relay lease was taken over: outbox entries stay');
      } else {
        await this.redis.call('XTRIM', [this.key, 'MINID', minId]);
      }
    } catch (err) {
      throw toStoreError('outbox ack', err);
    }
  }

  async size(): Promise<number> {
    try {
      return Number(await this.redis.call('XLEN', [this.key]));
    } catch (err) {
      throw toStoreError('outbox size', err);
    }
  }

  /** Closes the blocking connection (a blocked read rejects at once); the shared client stays open. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.blocking?.disconnect();
  }

  private blockingConnection(): RedisClient {
    if (this.closed) throw new Error('Connection is closed (outbox closed)');
    if (!this.blocking) {
      const overrides = { commandTimeout: undefined, blockingTimeout: 1000, blockingTimeoutGrace: 1000, connectionName: 'keyward-outbox' };
      const dup =
        this.redis instanceof Redis
          ? this.redis.duplicate(overrides)
          : this.redis.duplicate(undefined, {
              redisOptions: { ...this.redis.options.redisOptions, ...overrides },
            });
      dup.on('error', () => {}); // reconnects on its own; reads report the failure
      this.blocking = dup;
    }
    return this.blocking;
  }

  private entries(reply: unknown): OutboxEntry[] {
    if (reply === null || reply === undefined) return [];
    // RESP2: [[key, entries]]; RESP3 as ioredis 6 returns it: [key, entries] (the map
    // flattened), or an object/Map from other clients. entries: [[id, [f, v, ...]], ...]
    let streams: [unknown, unknown][];
    if (reply instanceof Map) streams = [...reply.entries()];
    else if (Array.isArray(reply)) {
      streams = [];
      if (typeof reply[0] === 'string' || Buffer.isBuffer(reply[0])) {
        for (let i = 0; i + 1 < reply.length; i += 2) streams.push([reply[i], reply[i + 1]]);
      } else {
        for (const s of reply) streams.push(s as [unknown, unknown]);
      }
    } else streams = Object.entries(reply as Record<string, unknown>);
    const out: OutboxEntry[] = [];
    for (const s of streams) {
      const items = (s[1] ?? []) as [string, unknown[]][];
      for (const [id, flat] of items) out.push({ seq: String(id), event: decode(String(id), flat) });
    }
    return out;
  }
}

/** The stream id right after `seq`: XTRIM MINID keeps ids >= it, so `seq` itself goes. */
export function nextId(seq: string): string {
  const m = /^(\d+)-(\d+)$/.exec(seq);
  if (!m) throw new RangeError(`not an outbox sequence: ${JSON.stringify(seq)}`);
  return `${m[1]}-${(BigInt(m[2]) + 1n).toString()}`;
}

function encode(e: WireEvent): WireEvent {
  // only the port's fields, in a fixed order
  return {
    id: e.id,
    type: e.type,
    time: e.time,
    service: e.service,
    keyId: e.keyId,
    priority: e.priority,
    body: e.body,
    ...(e.traceparent !== undefined && { traceparent: e.traceparent }),
  };
}

/**
 * An entry this version cannot read is an error, not a skip: the relay would otherwise lose an
 * event (a newer sidecar's format during a rolling upgrade, say). It retries, and logs, until a
 * sidecar that can read it takes over.
 */
function decode(id: string, flat: unknown[]): WireEvent {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) f[String(flat[i])] = String(flat[i + 1]);
  if (f.v !== FORMAT_VERSION) throw new Error(`outbox entry ${id} has unsupported format version ${f.v}`);
  const e = JSON.parse(f.e) as WireEvent;
  if (typeof e.id !== 'string' || typeof e.body !== 'string' || typeof e.type !== 'string') {
    throw new Error(`outbox entry ${id} is not an event`);
  }
  return e;
}
