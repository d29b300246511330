import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { HealthImplementation } from 'grpc-health-check';
import { ValidationCache } from './adapters/cache/validation-cache';
import { AesGcmSealer } from './adapters/crypto/aes-gcm-sealer';
import { InProcessEventTransport } from './adapters/events/in-process-event-transport';
import { createMemoryAdapters } from './adapters/memory-adapters';
import { createNotificationChannels } from './adapters/notify/create-channels';
import type { StorageAdapters } from './adapters/storage-adapters';
import { AdminAuthenticator } from './app/admin-authenticator';
import { AuditQuery } from './app/audit-query';
import { AuditRecorder } from './app/audit-recorder';
import { DenialEvents } from './app/denial-events';
import { EventRelay } from './app/event-relay';
import { KeyAdmin } from './app/key-admin';
import { keyChangeEffects, lifecycleEffects } from './app/key-change-effects';
import { LifecycleScheduler } from './app/lifecycle-scheduler';
import { NotificationRouter } from './app/notification-router';
import { PolicyAdmin } from './app/policy-admin';
import { PolicyResolver } from './app/policy-resolver';
import { StoreHealthMonitor } from './app/store-health-monitor';
import { StoreValidationSource } from './app/store-validation-source';
import { UsageTracker } from './app/usage-tracker';
import type { Config } from './config/config';
import { systemClock, type Clock } from './domain/clock';
import { toWireEvent } from './codec/event-codec';
import { invalidatesKey, invalidatesPolicies, makeEvent, type EventPayload } from './domain/events';
import { KeyIdGenerator } from './domain/key-id';
import type { Logger } from './logger';
import type { EventTransport } from './ports/event-transport';
import { createMetrics, type Metrics } from './observability/metrics';
import { startMetricsServer, type MetricsServer } from './observability/metrics-server';
import { ObservedKeyValidator } from './observability/observed-key-validator';
import { traceparentOfActiveSpan } from './observability/span-helpers';
import { measureStore } from './observability/store-metrics';
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
  /** Where the sidecar's metrics go; default: a new registry (with process metrics). */
  metrics?: Metrics;
  /** Called once everything is wired, just before the listeners open (`keyward serve`: one full GC). */
  beforeListen?: () => void;
}

export interface Sidecar {
  readonly grpcAddr: string;
  readonly healthAddr: string;
  /** The bound address of GET /metrics; undefined when KEYWARD_METRICS_ADDR is off. */
  readonly metricsAddr?: string;
  /** The validation cache, when enabled (for tests and benchmarks). */
  readonly cache?: ValidationCache;
  /** The lifecycle scheduler, unless KEYWARD_SCHEDULER_ENABLED is false. */
  readonly scheduler?: LifecycleScheduler;
  /** Drains in-flight calls (bounded by `shutdownTimeout`) and releases every resource. */
  stop(): Promise<void>;
}

/** Readiness: these go NOT_SERVING while the store is unreachable and during shutdown. */
const SERVICES = ['', 'keyward.v1.KeyService', 'keyward.v1.KeyAdminService'];
/** Liveness: SERVING for as long as the process runs, so a Redis outage does not restart pods. */
const LIVENESS = 'keyward.liveness';
/** How long shutdown waits for the relay to publish what is still in the outbox. */
const RELAY_DRAIN_MS = 2_000;

/** The composition root: builds every adapter and use case from the config and wires them. */
export async function startSidecar(deps: SidecarDeps): Promise<Sidecar> {
  const { config, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const metrics = deps.metrics ?? createMetrics();
  // The store of record and what shares it. ioredis is loaded only when Redis is configured.
  const storageOptions = { now: () => clock.now(), auditRetentionMs: config.auditRetention, auditMaxEntries: config.auditMaxEntries, store: deps.store };
  const storage: StorageAdapters = config.redisUrl
    ? (await import('./adapters/redis/redis-adapters')).createRedisAdapters(config.redisUrl, logger, storageOptions)
    : createMemoryAdapters(storageOptions);
  const store = measureStore(storage.store, metrics);
  const embedded = deps.store === undefined && config.redisUrl === undefined;

  // Events: a durable outbox, one relay at a time publishing it in order, and the transport.
  // The NATS client is loaded only when configured: its modules alone are ~11 MiB of RSS.
  let natsConnected: (() => boolean) | undefined;
  let transport: EventTransport;
  if (config.natsUrl) {
    const { createNatsEventTransport } = await import('./adapters/events/nats-event-transport');
    const nats = await createNatsEventTransport({ url: config.natsUrl, logger, streamMaxAge: config.eventsMaxAge, name: `keyward-${process.pid}` }).catch(
      async (err: unknown) => {
        await storage.close().catch(() => {}); // an open Redis client would keep the failed process alive; the connect error is the news
        throw err;
      },
    );
    natsConnected = () => nats.isConnected();
    transport = nats;
  } else {
    transport = new InProcessEventTransport({ logger });
  }
  const { outbox, auditLog } = storage;
  const relay = new EventRelay({ outbox, transport, logger, lease: storage.relayLease });
  metrics.observeEvents({ relay, outbox, connected: natsConnected });

  // Audit trail and notification channels.
  const audit = new AuditRecorder({ log: auditLog, logger, intervalMs: 1_000, throttleMs: config.auditValidationThrottle });
  const router = new NotificationRouter({
    channels: createNotificationChannels({
      webhooks: config.notifications.webhooks,
      deadLetters: storage.deadLetters,
      logger,
      closeTimeoutMs: 5_000,
      onWebhookDelivery: (channel, result) => metrics.webhookDelivery(channel, result),
    }),
    routes: config.notifications.routes,
    batch: config.notifications.batch,
    logger,
  });

  // Events the sidecar itself raises (denials, quota, policy changes) go through the outbox too.
  const eventIds = new KeyIdGenerator(undefined, 'evt');
  const emit = (payload: EventPayload, ctx: { service?: string; keyId?: string; actor?: string } = {}) => {
    const now = clock.now();
    const event = makeEvent(payload, { id: eventIds.next(now), time: now, actor: ctx.actor ?? 'keyward', service: ctx.service, keyId: ctx.keyId });
    const traceparent = traceparentOfActiveSpan(); // a denial event links to the validation that caused it
    outbox.append({ ...toWireEvent(event), ...(traceparent && { traceparent }) }).catch((err) => logger.warn({ err, type: event.type }, 'event not queued'));
  };

  // Policies and limits: policies cached in-process, limits shared through the store.
  const policyStore = measureStore(storage.policyStore, metrics, 'policy_');
  const policies = new PolicyResolver({ store: policyStore, clock, ttlMs: config.cacheTtl, maxStalenessMs: config.cacheMaxStaleness });
  const { limiter } = storage;
  const denials = new DenialEvents({ emit, throttleMs: config.auditValidationThrottle });

  // Validation: cache in front of the store, usage and audit off the hot path.
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
  if (cache) metrics.observeCache(cache);
  const validator = new ObservedKeyValidator({
    metrics,
    source: cache ?? new StoreValidationSource(store),
    clock,
    usage,
    audit: {
      recordValidation(d, clientIp, now) {
        audit.recordValidation(d, clientIp, now);
        denials.record(d, now);
      },
    },
    policies,
    limiter,
  });
  // Rotated secrets are sealed only when a key-encryption key is configured (never stored).
  const sealer = config.kek ? new AesGcmSealer(config.kek.bytes()) : undefined;
  const effectsOptions = { cache, outbox, audit, clock, eventIds, logger, traceparent: traceparentOfActiveSpan };
  const admin = new KeyAdmin({
    store,
    clock,
    ids: new KeyIdGenerator(),
    defaultPrefix: config.keyPrefix,
    onChange: keyChangeEffects(effectsOptions),
    policies: policyStore,
    limiter,
    onQuotaExceeded: (service, limit, actor) => emit({ type: 'quota.exceeded', quota: 'max_active_keys', limit }, { service, actor }),
    defaultGracePeriodMs: config.rotationGracePeriod,
    sealer,
  });
  // Expiry, grace ends and rotation strategies: every sidecar runs it, one at a time acts (lease).
  const scheduler = config.schedulerEnabled
    ? new LifecycleScheduler({
        store,
        policies: policyStore,
        admin,
        lease: storage.schedulerLease,
        effects: lifecycleEffects(effectsOptions),
        clock,
        logger,
        intervalMs: config.schedulerInterval,
        batchSize: config.schedulerBatch,
      })
    : undefined;
  if (scheduler) metrics.observeScheduler(() => scheduler.stats());
  const policyAdmin = new PolicyAdmin({
    store: policyStore,
    clock,
    ids: new KeyIdGenerator(undefined, 'pol'),
    canSealSecrets: sealer !== undefined,
    onChange: (kind, policy, actor) => {
      policies.invalidateService(policy.service); // this sidecar at once; the others by the event
      emit({ type: `policy.${kind}`, policy }, { actor });
    },
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
    keyAdminService: createKeyAdminService({ admin, policies: policyAdmin, audit: new AuditQuery(auditLog), authenticator, logger }),
    health,
    logger,
    metrics,
    http2StreamTable: config.http2StreamTable,
    http2ResponseOptions: config.http2ResponseOptions,
  });
  let metricsServer: MetricsServer | undefined;
  let bound: { grpcAddr: string; healthAddr: string };
  try {
    deps.beforeListen?.();
    bound = await servers.listen(config.grpcAddr, config.healthAddr);
    if (config.metricsAddr !== 'off') {
      metricsServer = await startMetricsServer({ addr: config.metricsAddr, metrics, onError: (err) => logger.warn({ err }, 'cannot render metrics') });
    }
  } catch (err) {
    await servers.shutdown(0);
    await Promise.allSettled([transport.close(), storage.close()]);
    throw err;
  }

  // Every sidecar hears every change (cache invalidation); one sidecar handles each notification.
  const invalidations = await transport.subscribeAll((e) => {
    if (invalidatesKey(e.type)) cache?.invalidateId(e.keyId);
    else if (invalidatesPolicies(e.type)) {
      policies.invalidateService(e.service);
      scheduler?.recompute(e.service); // due times of the service's keys may have moved
    }
  });
  const notifications = await transport.subscribeShared((e) => router.dispatch(e));
  relay.start();
  // An unreachable store does not stop start-up: the sidecar serves, NOT_SERVING, and the
  // monitor flips readiness when the store answers.
  await monitor.start();
  usage.start();
  audit.start();
  scheduler?.start();
  logger.info(
    {
      ...bound,
      metricsAddr: metricsServer?.address,
      store: store.constructor.name,
      events: transport.constructor.name,
      cache: cache ? config.cacheMaxEntries : 0,
      scheduler: scheduler !== undefined,
      kek: sealer?.kekId, // the KEK's id (a hash prefix), never the key
      ready: monitor.isReachable,
    },
    'keyward listening',
  );

  let stopping: Promise<void> | undefined;
  return {
    ...bound,
    metricsAddr: metricsServer?.address,
    cache,
    scheduler,
    stop() {
      stopping ??= (async () => {
        monitor.stop();
        setReady(false);
        await scheduler?.stop(); // gives the lease up, so another sidecar's scheduler takes over at once
        await servers.shutdown(config.shutdownTimeout);
        await Promise.allSettled([usage.stop(), audit.stop()]);
        if (!(await relay.drain(RELAY_DRAIN_MS))) logger.warn('events still in the outbox at shutdown; another sidecar will publish them');
        await relay.stop();
        await Promise.allSettled([invalidations.close(), notifications.close()]);
        await router.close();
        await Promise.allSettled([transport.close()]);
        await storage.close(); // last: the store quits the shared Redis client
        await metricsServer?.close();
        logger.info('keyward stopped');
      })();
      return stopping;
    },
  };
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
