import { randomUUID } from 'node:crypto';
import type { Lease } from '../../ports/lease';
import { toStoreError, type RedisClient } from '../redis/redis-client';

/*
 * A lease in Redis: at most one holder at a time, for as long as it keeps renewing it. The event
 * relay uses it so that one sidecar at a time publishes the shared outbox, in order.
 *
 *   {kw}:<name>:lease   STRING  "<instance id>:<token>", with a TTL (PX)
 *   {kw}:<name>:fence   STRING  counter: INCR on every acquisition
 *
 * The token is a fencing token: every acquisition gets a larger one, and the lease value carries
 * it, so a holder that paused past its TTL and lost the lease cannot pass for the new holder, even
 * with the same instance id. Writes that must only happen under the lease (the outbox ack) check
 * the exact value in the same script (see RedisEventOutbox `lease`).
 *
 * Acquire-or-renew, renew and release are Lua scripts, so each check-and-set is atomic; both keys
 * share the hash tag, so the scripts are legal on a cluster.
 *
 * Locally the lease counts as held until `start of the renewing call + ttl * 0.9`: Redis started
 * the TTL no earlier than that call did, so the local view never outlives the one in Redis
 * (10% of the TTL absorbs clock-rate drift).
 */

/** KEYS: lease, fence. ARGV: instance id, ttl ms, current value ('' = none). -> {state, value}; state 0 taken, 1 renewed, 2 acquired. */
const ACQUIRE = `
local cur = redis.call('GET', KEYS[1])
if cur then
  if ARGV[3] ~= '' and cur == ARGV[3] then
    redis.call('PEXPIRE', KEYS[1], ARGV[2])
    return {1, cur}
  end
  return {0, cur}
end
local token = redis.call('INCR', KEYS[2])
local v = ARGV[1] .. ':' .. token
redis.call('SET', KEYS[1], v, 'PX', ARGV[2])
return {2, v}`;

/** KEYS: lease. ARGV: value. */
const RELEASE = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

export interface RedisLeaseOptions {
  /** Shared client; the lease does not close it. */
  redis: RedisClient;
  /** Hash tag of the keys, without braces. Default `kw`. */
  keyPrefix?: string;
  /** The lease's name: keys `{kw}:<name>:lease` and `{kw}:<name>:fence`. Default `outbox`. */
  name?: string;
  /** Who holds it (logged and stored in the value). Default a random UUID. */
  instanceId?: string;
  now?: () => number;
}

export class RedisLease implements Lease {
  readonly name: string;
  readonly key: string;
  readonly fenceKey: string;
  readonly instanceId: string;
  private value?: string;
  private fencingToken?: number;
  private validUntil = 0;
  private readonly now: () => number;

  constructor(private readonly opts: RedisLeaseOptions) {
    const tag = opts.keyPrefix ?? 'kw';
    if (!/^[^{}\s]+$/.test(tag)) throw new RangeError(`invalid keyPrefix ${JSON.stringify(tag)}: no braces or spaces`);
    const name = opts.name ?? 'outbox';
    this.name = name;
    this.key = `{${tag}}:${name}:lease`;
    this.fenceKey = `{${tag}}:${name}:fence`;
    this.instanceId = opts.instanceId ?? randomUUID();
    if (this.instanceId.includes(':')) throw new RangeError('instanceId must not contain ":"');
    this.now = opts.now ?? Date.now;
  }

  /**
   * Takes the lease when it is free, or renews it when this instance holds it; true when held for
   * `ttlMs` from now. A new acquisition (after the lease had lapsed) gets a new fencing token.
   * Rejects with StoreUnavailableError when Redis cannot be reached (the lease may still be held
   * until `holds()` turns false).
   */
  async tryAcquire(ttlMs: number): Promise<boolean> {
    if (!Number.isSafeInteger(ttlMs) || ttlMs < 10) throw new RangeError(`ttlMs must be an integer >= 10, got ${ttlMs}`);
    const started = this.now();
    let reply: unknown;
    try {
      reply = await this.opts.redis.eval(ACQUIRE, 2, this.key, this.fenceKey, this.instanceId, String(ttlMs), this.value ?? '');
    } catch (err) {
      throw toStoreError('lease acquire', err);
    }
    if (!Array.isArray(reply) || reply.length !== 2) throw new Error(`lease acquire: unexpected reply ${JSON.stringify(reply)}`);
    const [state, value] = [Number(reply[0]), String(reply[1])];
    if (state === 0) {
      this.forget();
      return false;
    }
    this.value = value;
    this.fencingToken = Number(value.slice(value.lastIndexOf(':') + 1));
    this.validUntil = started + Math.floor(ttlMs * 0.9);
    return true;
  }

  /** Whether this instance holds the lease now, by its own clock (conservative). */
  holds(): boolean {
    return this.value !== undefined && this.now() < this.validUntil;
  }

  /** The fencing token of the current holding; undefined when not held. */
  token(): number | undefined {
    return this.holds() ? this.fencingToken : undefined;
  }

  /** The lease's value in Redis while held (what fenced writes compare); undefined when not held. */
  holder(): string | undefined {
    return this.holds() ? this.value : undefined;
  }

  /** Gives the lease up (if still ours), so another instance can take it at once. */
  async release(): Promise<void> {
    const value = this.value;
    this.forget();
    if (value === undefined) return;
    try {
      await this.opts.redis.eval(RELEASE, 1, this.key, value);
    } catch (err) {
      throw toStoreError('lease release', err);
    }
  }

  private forget(): void {
    this.value = undefined;
    this.fencingToken = undefined;
    this.validUntil = 0;
  }
}
