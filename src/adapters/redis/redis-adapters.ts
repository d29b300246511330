import type { Logger } from '../../logger';
import { RedisAuditLog } from '../audit/redis-audit-log';
import { RedisEventOutbox } from '../events/redis-event-outbox';
import { RedisLease } from '../events/redis-lease';
import { RedisLimiter } from '../limits/redis-limiter';
import { RedisDeadLetterStore } from '../notify/redis-dead-letter-store';
import { RedisKeyStore } from '../store/redis-key-store';
import { RedisPolicyStore } from '../store/redis-policy-store';
import type { StorageAdapters, StorageOptions } from '../storage-adapters';
import { createRedisClient, waitUntilReady } from './redis-client';

/**
 * The shared store of record: every adapter over one Redis client. The sidecar loads this
 * module only when KEYWARD_REDIS_URL is set, so the embedded sidecar never loads ioredis.
 */
export function createRedisAdapters(url: string, logger: Logger, opts: StorageOptions): StorageAdapters {
  const redis = createRedisClient(url, {
    onError: (err) => logger.debug({ err: err.message }, 'redis connection error'),
  });
  // Not awaited: keyward starts even when Redis is down and becomes ready when it answers.
  waitUntilReady(redis, 2_000).catch(() => logger.warn('redis not reachable yet; retrying in the background'));
  const store = opts.store ?? new RedisKeyStore({ redis });
  const relayLease = new RedisLease({ redis });
  const outbox = new RedisEventOutbox({ redis, lease: relayLease });
  const auditLog = new RedisAuditLog({ redis, retentionMs: opts.auditRetentionMs, maxEntries: opts.auditMaxEntries });
  return {
    store,
    policyStore: new RedisPolicyStore({ redis }),
    // shares the client: closed with the store, not on its own
    limiter: new RedisLimiter({ redis }),
    outbox,
    relayLease,
    schedulerLease: new RedisLease({ redis, name: 'scheduler' }),
    auditLog,
    deadLetters: new RedisDeadLetterStore({ redis }),
    async close() {
      await Promise.allSettled([outbox.close(), auditLog.close()]);
      await store.close(); // the Redis key store quits the client the others share
      if (redis.status !== 'end') redis.disconnect();
    },
  };
}
