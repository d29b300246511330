import Redis, { ReplyError, type Cluster, type RedisOptions } from 'ioredis';
import { isKeywardError, StoreUnavailableError } from '../../domain/errors';

/**
 * The Redis connection as every Redis adapter of keyward uses it (store, outbox, audit, dead
 * letters): one client factory tuned for a sidecar, and one mapping of failures to
 * `StoreUnavailableError`.
 */

/** An ioredis client, standalone or cluster. The adapter given one owns it: its `close()` quits it. */
export type RedisClient = Redis | Cluster;

/** Reply-error codes that mean "Redis cannot serve this now", not "this request is wrong". */
export const UNAVAILABLE_REPLIES =
  /^(LOADING|BUSY|MASTERDOWN|CLUSTERDOWN|TRYAGAIN|READONLY|NOREPLICAS|OOM|NOAUTH|WRONGPASS|NOPERM|MOVED|ASK)\b/;

/** Maps a Redis failure: an outage becomes `StoreUnavailableError`; a refusal (a bug) stays an Error. */
export function toStoreError(op: string, err: unknown): Error {
  if (isKeywardError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (err instanceof ReplyError && !UNAVAILABLE_REPLIES.test(message)) {
    // Redis answered but refused: a bug (wrong type, script error), not an outage.
    return new Error(`redis ${op} failed: ${message}`, { cause: err });
  }
  return new StoreUnavailableError(`redis unavailable (${op}): ${message}`, { cause: err });
}

export interface RedisClientOptions extends RedisOptions {
  /** Receives connection errors (ioredis reports each failed reconnect); default: ignored. */
  onError?: (err: Error) => void;
}

/**
 * An ioredis client tuned for a sidecar: fail fast while disconnected (no offline queue, no
 * replay of in-flight commands after a reconnect: the caller already got an error and a replayed
 * write could apply twice), short timeouts, and reconnection forever with capped backoff. Store
 * calls made while Redis is down reject at once with StoreUnavailableError.
 */
export function createRedisClient(url: string, opts: RedisClientOptions = {}): Redis {
  const { onError, ...options } = opts;
  const client = new Redis(url, {
    lazyConnect: false,
    enableOfflineQueue: false,
    autoResendUnfulfilledCommands: false,
    // With no resend, this only decides when in-flight commands are failed after a disconnect: 0 = at once.
    maxRetriesPerRequest: 0,
    retryStrategy: (times) => Math.min(50 * 2 ** Math.min(times - 1, 10), 2000) + Math.floor(Math.random() * 100),
    connectTimeout: 2000,
    commandTimeout: 1000,
    // How long disconnect() waits for a socket to close before destroying it; it also keeps
    // the process alive that long at shutdown when Redis was already gone.
    disconnectTimeout: 500,
    ...options,
  });
  client.on('error', onError ?? (() => {}));
  return client;
}

/**
 * Resolves once the client is ready for commands (with the offline queue disabled, commands sent
 * before that fail). Rejects with StoreUnavailableError after `timeoutMs`; the client keeps
 * reconnecting in the background.
 */
export function waitUntilReady(client: RedisClient, timeoutMs = 5000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new StoreUnavailableError(`redis not ready after ${timeoutMs} ms (status ${client.status})`));
    }, timeoutMs);
    client.once('ready', onReady);
  });
}

