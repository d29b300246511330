import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { HealthImplementation } from 'grpc-health-check';
import { ValidationCache } from './adapters/cache/validation-cache';
import { MemoryKeyStore } from './adapters/store/memory-key-store';
import { createRedisClient, RedisKeyStore, waitUntilReady } from './adapters/store/redis-key-store';
import { AdminAuthenticator } from './app/admin-authenticator';
import { KeyAdmin } from './app/key-admin';
import { KeyValidator } from './app/key-validator';
import { StoreHealthMonitor } from './app/store-health-monitor';
import { StoreValidationSource } from './app/store-validation-source';
import { UsageTracker } from './app/usage-tracker';
import type { Config } from './config/config';
import { systemClock, type Clock } from './domain/clock';
import { KeyIdGenerator } from './domain/key-id';
import type { Logger } from './logger';
import type { KeyStore } from './ports/key-store';
import { createKeyAdminService } from './transport/grpc/key-admin-service';
import { createKeyService } from './transport/grpc/key-service';
import { GrpcServers } from './transport/grpc/servers';

export interface SidecarDeps {
  config: Config;
  logger: Logger;
  clock?: Clock;
  /** Overrides the store chosen by the config (Redis when KEYWARD_REDIS_URL is set, else memory). */
  store?: KeyStore;
}

export interface Sidecar {
  readonly grpcAddr: string;
  readonly healthAddr: string;
  /** The validation cache, when enabled (for tests and benchmarks). */
  readonly cache?: ValidationCache;
  /** Drains in-flight calls (bounded by `shutdownTimeout`) and releases every resource. */
  stop(): Promise<void>;
}

/** Readiness: these go NOT_SERVING while the store is unreachable and during shutdown. */
const SERVICES = ['', 'keyward.v1.KeyService', 'keyward.v1.KeyAdminService'];
/** Liveness: SERVING for as long as the process runs, so a Redis outage does not restart pods. */
const LIVENESS = 'keyward.liveness';

/** The composition root: builds every adapter and use case from the config and wires them. */
export async function startSidecar(deps: SidecarDeps): Promise<Sidecar> {
  const { config, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const store = deps.store ?? createStore(config, logger);
  const embedded = deps.store === undefined && config.redisUrl === undefined;

  const usage = new UsageTracker({ store, logger, intervalMs: config.usageFlushInterval });
  const cache =
    config.cacheMaxEntries > 0
      ? new ValidationCache({
          load: (hash) => store.getByHash(hash),
          clock,
          maxEntries: config.cacheMaxEntries,
          ttlMs: config.cacheTtl,
          negativeTtlMs: config.cacheNegativeTtl,
          maxStalenessMs: config.cacheMaxStaleness,
        })
      : undefined;
  const validator = new KeyValidator({ source: cache ?? new StoreValidationSource(store), clock, usage });
  const admin = new KeyAdmin({
    store,
    clock,
    ids: new KeyIdGenerator(),
    defaultPrefix: config.keyPrefix,
    // This sidecar's own writes take effect in its cache at once.
    onChange: (kind, record) => (kind === 'deleted' ? cache?.invalidate(record.hash) : cache?.put(record)),
  });
  const authenticator = new AdminAuthenticator({
    bootstrapToken: config.adminToken ?? (embedded ? devAdminToken(config.devAdminTokenFile, logger) : undefined),
    validator,
  });
  if (config.adminToken === undefined && !embedded) {
    logger.warn('no KEYWARD_ADMIN_TOKEN: only admin keys already in the store can use the admin API');
  }

  const health = new HealthImplementation(
    Object.fromEntries([...SERVICES.map((s) => [s, 'NOT_SERVING' as const]), [LIVENESS, 'SERVING' as const]]),
  );
  const setReady = (ready: boolean) => {
    for (const s of SERVICES) health.setStatus(s, ready ? 'SERVING' : 'NOT_SERVING');
  };
  const monitor = new StoreHealthMonitor({ store, logger, intervalMs: 1_000, onChange: setReady });
  const servers = new GrpcServers({
    keyService: createKeyService({ validator, logger }),
    keyAdminService: createKeyAdminService({ admin, authenticator, logger }),
    health,
    logger,
  });
  let bound: { grpcAddr: string; healthAddr: string };
  try {
    bound = await servers.listen(config.grpcAddr, config.healthAddr);
  } catch (err) {
    await servers.shutdown(0);
    await store.close();
    throw err;
  }
  // An unreachable store does not stop start-up: the sidecar serves, NOT_SERVING, and the
  // monitor flips readiness when the store answers.
  await monitor.start();
  usage.start();
  logger.info(
    { ...bound, store: store.constructor.name, cache: cache ? config.cacheMaxEntries : 0, ready: monitor.isReachable },
    'keyward listening',
  );

  let stopping: Promise<void> | undefined;
  return {
    ...bound,
    cache,
    stop() {
      stopping ??= (async () => {
        monitor.stop();
        setReady(false);
        await servers.shutdown(config.shutdownTimeout);
        await usage.stop();
        await store.close();
        logger.info('keyward stopped');
      })();
      return stopping;
    },
  };
}

function createStore(config: Config, logger: Logger): KeyStore {
  if (config.redisUrl === undefined) return new MemoryKeyStore();
  const redis = createRedisClient(config.redisUrl, {
    onError: (err) => logger.debug({ err: err.message }, 'redis connection error'),
  });
  // Not awaited: keyward starts even when Redis is down and becomes ready when it answers.
  waitUntilReady(redis, 2_000).catch(() => logger.warn('redis not reachable yet; retrying in the background'));
  return new RedisKeyStore({ redis });
}

/**
 * Development convenience: with the embedded store and no configured token, keyward makes a
 * fresh bootstrap token and writes it (mode 0600) where the CLI looks for it. The token itself
 * is never logged, only the path.
 */
function devAdminToken(path: string, logger: Logger): string | undefined {
  const token = `kwdev_${randomBytes(32).toString('base64url')}`;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, `${token}\n`, { mode: 0o600 });
    chmodSync(path, 0o600);
  } catch (err) {
    logger.warn({ path, err }, 'no KEYWARD_ADMIN_TOKEN and the development token file cannot be written: the admin API is closed');
    return undefined;
  }
  logger.warn({ path }, 'no KEYWARD_ADMIN_TOKEN: generated a development admin token and wrote it to this file');
  return token;
}
