import { randomBytes } from 'node:crypto';
import pino from 'pino';
import { RedisAuditLog } from '../../src/adapters/audit/redis-audit-log';
import { AesGcmSealer } from '../../src/adapters/crypto/aes-gcm-sealer';
import { RedisEventOutbox } from '../../src/adapters/events/redis-event-outbox';
import { RedisLease } from '../../src/adapters/events/redis-lease';
import { RedisLimiter } from '../../src/adapters/limits/redis-limiter';
import { createRedisClient, waitUntilReady, type RedisClient } from '../../src/adapters/redis/redis-client';
import { RedisKeyStore } from '../../src/adapters/store/redis-key-store';
import { RedisPolicyStore } from '../../src/adapters/store/redis-policy-store';
import { AuditRecorder } from '../../src/app/audit-recorder';
import { KeyAdmin } from '../../src/app/key-admin';
import { keyChangeEffects, lifecycleEffects } from '../../src/app/key-change-effects';
import { LifecycleScheduler } from '../../src/app/lifecycle-scheduler';
import { PolicyAdmin } from '../../src/app/policy-admin';
import { rootPrincipal } from '../../src/domain/admin-access';
import { ManualClock } from '../../src/domain/clock';
import { FencedError } from '../../src/domain/errors';
import { KeyIdGenerator } from '../../src/domain/key-id';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

/*
 * Two sidecars' schedulers on one real Redis: each its own client, RedisLease ("scheduler") and
 * fenced writes checked by the Redis store's scripts. The domain time is a ManualClock shared by
 * both (lease TTLs and sealed-secret expiry run on Redis's own clock).
 */
const DAY = 86_400_000;
// Sealed secrets expire on Redis's clock (PEXPIREAT): the rotation must happen at about real time.
const T0 = Date.now() - 30 * DAY;
const HOUR = 3_600_000;
const logger = pino({ level: 'silent' });
const root = rootPrincipal();

let server: RedisServerHandle;
const clients: RedisClient[] = [];

beforeAll(async () => {
  server = await startRedis();
}, 30_000);
afterAll(async () => {
  for (const c of clients) c.disconnect();
  await server?.stop();
});

async function sidecar(clock: ManualClock, kek: Buffer, name: string) {
  const redis = createRedisClient(server.url);
  clients.push(redis);
  await waitUntilReady(redis);
  const store = new RedisKeyStore({ redis });
  const policyStore = new RedisPolicyStore({ redis });
  const outbox = new RedisEventOutbox({ redis });
  const auditLog = new RedisAuditLog({ redis, retentionMs: 1e12, maxEntries: 100_000 });
  const audit = new AuditRecorder({ log: auditLog, logger, intervalMs: 1000, throttleMs: 0 });
  const effectsOptions = { outbox, audit, clock, eventIds: new KeyIdGenerator(undefined, 'evt'), logger };
  const admin = new KeyAdmin({
    store,
    clock,
    ids: new KeyIdGenerator(),
    defaultPrefix: 'sk',
    onChange: keyChangeEffects(effectsOptions),
    policies: policyStore,
    limiter: new RedisLimiter({ redis }),
    sealer: new AesGcmSealer(kek),
  });
  const scheduler = new LifecycleScheduler({
    store,
    policies: policyStore,
    admin,
    lease: new RedisLease({ redis, name: 'scheduler', instanceId: name }),
    effects: lifecycleEffects(effectsOptions),
    clock,
    logger,
    batchSize: 7,
  });
  return { redis, store, policyStore, outbox, auditLog, admin, scheduler };
}

it('two schedulers racing on Redis: exactly one rotation per due key, events once', async () => {
  const clock = new ManualClock(T0);
  const kek = randomBytes(32);
  const a = await sidecar(clock, kek, 'a');
  const b = await sidecar(clock, kek, 'b');
  const policies = new PolicyAdmin({ store: a.policyStore, clock, ids: new KeyIdGenerator(undefined, 'pol'), canSealSecrets: true });
  await policies.create(
    root,
    { service: 'orders', name: 'auto', allowedScopes: [], requireExpiry: false, allowedCidrs: [], timeZone: 'UTC', timeWindows: [], rateLimits: [], maxActiveKeys: 0, maxAgeMs: 30 * DAY, rotation: { strategy: 'auto', noticeMs: 0, gracePeriodMs: HOUR } },
    true,
  );
  const ids: string[] = [];
  for (let i = 0; i < 30; i++) ids.push((await a.admin.create(root, { service: 'orders', owner: 'o', name: `k${i}`, scopes: [], metadata: {}, prefix: '' })).record.id);
  clock.set(T0 + 30 * DAY);
  for (let round = 0; round < 8; round++) await Promise.all([a.scheduler.tick(), b.scheduler.tick()]);
  // A takeover before the second wave (grace ends): the holder's lease vanishes in Redis (as if
  // it expired during a pause); the other takes it, and a write under the old fence is refused.
  clock.set(T0 + 30 * DAY + HOUR);
  const leader = a.scheduler.leading() ? a : b;
  const other = leader === a ? b : a;
  const oldFence = { lease: 'scheduler', value: (await leader.redis.get('{kw}:scheduler:lease'))! };
  await leader.redis.del('{kw}:scheduler:lease');
  await Promise.all([other.scheduler.tick(), leader.scheduler.tick()]);
  const sample = (await a.store.getById(ids[0]))!;
  await expect(a.store.replace({ ...sample, version: sample.version + 1 }, sample.version, { fence: oldFence })).rejects.toBeInstanceOf(FencedError);
  for (let round = 0; round < 4; round++) await Promise.all([a.scheduler.tick(), b.scheduler.tick()]);

  for (const id of ids) {
    const r = await a.store.getById(id);
    expect(r!.rotatedTo).toBeDefined();
    expect(r!.state).toBe('rotated'); // grace over: retired
    expect((await a.store.getById(r!.rotatedTo!))!.rotatedFrom).toBe(id);
  }
  const all = await a.store.list({ service: 'orders', limit: 1000 });
  expect(all.records).toHaveLength(60);
  const events = await a.outbox.read(undefined, 10_000, 0);
  const rotated = events.filter((e) => e.event.type === 'key.rotated');
  expect(rotated).toHaveLength(30);
  expect(new Set(rotated.map((e) => e.event.keyId)).size).toBe(30);
  expect(events.filter((e) => e.event.type === 'key.updated')).toHaveLength(30); // retired once each
  expect(a.scheduler.stats().steps.auto_rotate + b.scheduler.stats().steps.auto_rotate).toBe(30);
  // Each successor's secret can be claimed once, by either sidecar.
  const first = (await a.store.getById(ids[0]))!;
  clock.set(T0 + 30 * DAY + HOUR / 2); // inside the grace period again for the claim window check
  const claimed = await b.admin.claimRotatedSecret(root, first.rotatedTo!);
  expect(claimed.secret).toMatch(/^sk_/);
  await expect(a.admin.claimRotatedSecret(root, first.rotatedTo!)).rejects.toThrow(/already claimed/);
}, 60_000);
