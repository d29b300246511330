import { StoreUnavailableError } from '../../domain/errors';
import { toStoreError, type RedisClient } from '../redis/redis-client';
import type { DeadLetter, DeadLetterReason, DeadLetterStore } from './dead-letter-store';
import { checkLimit } from './memory-dead-letter-store';

export interface RedisDeadLetterStoreOptions {
  /** Usually the key store's client; this store never quits it. */
  redis: RedisClient;
  /** The hash tag, without braces, as for `RedisKeyStore`. Default `kw`. */
  keyPrefix?: string;
  /** Records kept; older ones are trimmed on every append. Default 10 000. */
  maxLength?: number;
}

const FORMAT_VERSION = 1;

/**
 * Dead letters in one Redis list, `{kw}:deadletters`, newest first: LPUSH then LTRIM in one
 * MULTI, so the list never grows past `maxLength`. Each entry is the JSON of the record plus a
 * format version `v`. Shared by the fleet, so any sidecar (or an operator with `redis-cli LRANGE`)
 * sees what every sidecar failed to deliver.
 *
 * Failures map as in every Redis adapter (`toStoreError`): an outage (unreachable, timeout,
 * LOADING, READONLY...) is a StoreUnavailableError with the original as `cause`; a refusal that
 * retrying cannot fix (WRONGTYPE: something else wrote the key) is a plain Error naming it.
 */
export class RedisDeadLetterStore implements DeadLetterStore {
  private readonly redis: RedisClient;
  private readonly key: string;
  private readonly maxLength: number;

  constructor(opts: RedisDeadLetterStoreOptions) {
    const tag = opts.keyPrefix ?? 'kw';
    if (!/^[^{}\s]+$/.test(tag)) throw new RangeError(`invalid keyPrefix ${JSON.stringify(tag)}: no braces or spaces`);
    const maxLength = opts.maxLength ?? 10_000;
    if (!Number.isSafeInteger(maxLength) || maxLength < 1) {
      throw new RangeError(`maxLength must be a positive integer, got ${maxLength}`);
    }
    this.redis = opts.redis;
    this.key = `{${tag}}:deadletters`;
    this.maxLength = maxLength;
  }

  async append(record: DeadLetter): Promise<void> {
    const entry = JSON.stringify({ v: FORMAT_VERSION, ...record });
    const replies = await this.run('append', () =>
      this.redis.multi().lpush(this.key, entry).ltrim(this.key, 0, this.maxLength - 1).exec(),
    );
    if (replies === null) throw new StoreUnavailableError('redis unavailable (deadletters append): transaction aborted');
    // exec() resolves with [error, reply] pairs; a command error inside the transaction lands there
    const failed = replies.find(([err]) => err !== null);
    if (failed) throw toStoreError('deadletters append', failed[0]);
  }

  async list(limit: number): Promise<DeadLetter[]> {
    checkLimit(limit);
    if (limit === 0) return [];
    const entries = await this.run('list', () => this.redis.lrange(this.key, 0, limit - 1));
    const out: DeadLetter[] = [];
    for (const e of entries) {
      const r = decode(e);
      if (r) out.push(r);
    }
    return out;
  }

  private async run<T>(op: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toStoreError(`deadletters ${op}`, err);
    }
  }
}

const REASONS: readonly DeadLetterReason[] = ['exhausted', 'rejected', 'queue_full', 'closed'];

/** An entry of a version this code knows, or undefined (skipped, never guessed at). */
function decode(entry: string): DeadLetter | undefined {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(entry) as Record<string, unknown>;
  } catch {
    return undefined;
  }
  if (o === null || typeof o !== 'object' || o.v !== FORMAT_VERSION) return undefined;
  if (!REASONS.includes(o.reason as DeadLetterReason)) return undefined;
  const r: DeadLetter = {
    channel: String(o.channel),
    eventIds: Array.isArray(o.eventIds) ? o.eventIds.map(String) : [],
    reason: o.reason as DeadLetterReason,
    attempts: Number(o.attempts),
    lastError: String(o.lastError),
    firstAttemptAt: Number(o.firstAttemptAt),
    lastAttemptAt: Number(o.lastAttemptAt),
    body: String(o.body),
  };
  return typeof o.lastStatus === 'number' ? { ...r, lastStatus: o.lastStatus } : r;
}
