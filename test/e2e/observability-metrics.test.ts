import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { CreateKeyRequest, GetKeyRequest, RevokeKeyRequest } from '../../src/gen/keyward/v1/key_admin_service.pb';
import { generateKey } from '../../src/domain/key-format';
import { ValidateKeyRequest, ValidationCode } from '../../src/gen/keyward/v1/key_service.pb';
import { eventually } from '../support/health';
import { bearer, call, startKeyward, type KeywardProcess } from '../support/keyward-process';
import { startNats, type NatsServerHandle } from '../support/nats-server';
import { scrape, sampleValue, sumOf, type Exposition } from '../support/prometheus-text';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

/*
 * /metrics of the built `keyward serve`, scraped and parsed as Prometheus would, while calls are
 * made: counters move by exactly what the calls did.
 */

let redis: RedisServerHandle;
let nats: NatsServerHandle;
let kw: KeywardProcess;
let embedded: KeywardProcess;
let hooks: Server;
let delivered = 0;

beforeAll(async () => {
  [redis, nats] = await Promise.all([startRedis(), startNats()]);
  hooks = createServer((req, res) => {
    req.resume().on('end', () => {
      delivered++;
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => hooks.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(hooks.address() as AddressInfo).port}/hook`;
  [kw, embedded] = await Promise.all([
    startKeyward({
      KEYWARD_REDIS_URL: redis.url,
      KEYWARD_NATS_URL: nats.url,
      KEYWARD_WEBHOOKS: JSON.stringify([{ name: 'ops', url, secret: 'metrics-webhook-secret-0123456789' }]),
      KEYWARD_NOTIFICATION_ROUTES: JSON.stringify([{ types: ['key.revoked'], channels: ['ops'] }]),
    }),
    startKeyward({ KEYWARD_METRICS_ADDR: 'off' }),
  ]);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([kw?.stop(), embedded?.stop()]);
  await Promise.allSettled([redis?.stop(), nats?.stop()]);
  hooks?.close();
});

const validate = (key: string, service = 'orders') =>
  call(kw.keys.validateKey.bind(kw.keys), ValidateKeyRequest.fromPartial({ key, service }), new Metadata());

async function metrics(): ReturnType<typeof scrape> {
  return scrape(kw.metricsAddr!);
}

describe('/metrics', () => {
  it('is served on KEYWARD_METRICS_ADDR (port 0 here), named in the start-up line, and can be turned off', async () => {
    expect(kw.metricsAddr).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(embedded.metricsAddr).toBeUndefined();
    const e = await metrics();
    expect(e.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(e.types.get('keyward_validations_total')).toBe('counter');
    expect(e.types.get('keyward_validation_duration_seconds')).toBe('histogram');
    expect(sampleValue(e, 'process_start_time_seconds')).toBeGreaterThan(0);
    expect(sampleValue(e, 'keyward_nats_connected')).toBe(1);
  });

  it('counts validations by code and service, cache hits and misses, and latency', async () => {
    const created = await call(kw.admin.createKey.bind(kw.admin), CreateKeyRequest.fromPartial({ service: 'orders', name: 'm' }), kw.root);
    const before = await metrics();
    const count = (e: Exposition, code: string, service = 'orders') => sampleValue(e, 'keyward_validations_total', { code, service }) ?? 0;

    for (let i = 0; i < 5; i++) expect((await validate(created.secret)).code).toBe(ValidationCode.VALIDATION_CODE_VALID);
    expect((await validate('sk_not-a-key')).code).toBe(ValidationCode.VALIDATION_CODE_MALFORMED);
    expect((await validate(created.secret, 'billing')).code).toBe(ValidationCode.VALIDATION_CODE_NOT_FOUND);

    const after = await metrics();
    expect(count(after, 'VALID') - count(before, 'VALID')).toBe(5);
    expect(count(after, 'MALFORMED') - count(before, 'MALFORMED')).toBe(1);
    expect(count(after, 'NOT_FOUND', 'billing') - count(before, 'NOT_FOUND', 'billing')).toBe(1);
    const hits = (e: Exposition) => sampleValue(e, 'keyward_cache_hits_total') ?? 0;
    // the create put the record in this sidecar's cache: every lookup of it is a hit
    expect(hits(after) - hits(before)).toBe(6);
    expect(sampleValue(after, 'keyward_cache_entries')).toBeGreaterThanOrEqual(1);
    const n = (e: Exposition) => sampleValue(e, 'keyward_validation_duration_seconds_count') ?? 0;
    expect(n(after) - n(before)).toBe(7);
    expect(sampleValue(after, 'keyward_validation_duration_seconds_bucket', { le: '+Inf' })).toBe(n(after));
  });

  it('counts admin requests by method and status, and store operations by op', async () => {
    const before = await metrics();
    const created = await call(kw.admin.createKey.bind(kw.admin), CreateKeyRequest.fromPartial({ service: 'orders', name: 'a' }), kw.root);
    await call(kw.admin.getKey.bind(kw.admin), GetKeyRequest.fromPartial({ keyId: created.key!.id }), kw.root);
    const denied = await call(kw.admin.getKey.bind(kw.admin), GetKeyRequest.fromPartial({ keyId: created.key!.id }), bearer('wrong-token')).catch(
      (e: ServiceError) => e,
    );
    expect((denied as ServiceError).code).toBe(status.UNAUTHENTICATED);
    const after = await metrics();
    const admin = (e: Exposition, method: string, code: string) => sampleValue(e, 'keyward_admin_requests_total', { method, code }) ?? 0;
    expect(admin(after, 'CreateKey', 'OK') - admin(before, 'CreateKey', 'OK')).toBe(1);
    expect(admin(after, 'GetKey', 'OK') - admin(before, 'GetKey', 'OK')).toBe(1);
    expect(admin(after, 'GetKey', 'UNAUTHENTICATED') - admin(before, 'GetKey', 'UNAUTHENTICATED')).toBe(1);
    const ops = (e: Exposition, op: string) => sampleValue(e, 'keyward_store_operation_duration_seconds_count', { op }) ?? 0;
    expect(ops(after, 'create') - ops(before, 'create')).toBe(1);
    expect(ops(after, 'get_by_id')).toBeGreaterThan(ops(before, 'get_by_id'));
    expect(sumOf(after, 'keyward_store_errors_total')).toBe(0);
  });

  it('counts events published by the relay, shows the outbox draining, and counts webhook deliveries', async () => {
    const before = await metrics();
    const created = await call(kw.admin.createKey.bind(kw.admin), CreateKeyRequest.fromPartial({ service: 'orders', name: 'e' }), kw.root);
    await call(kw.admin.revokeKey.bind(kw.admin), RevokeKeyRequest.fromPartial({ keyId: created.key!.id }), kw.root);
    const published = (e: Exposition) => sampleValue(e, 'keyward_events_published_total') ?? 0;
    await eventually(async () => published(await metrics()) - published(before) >= 2, 10_000);
    await eventually(async () => sampleValue(await metrics(), 'keyward_events_outbox_pending') === 0, 10_000);
    expect(sampleValue(await metrics(), 'keyward_events_publish_failures_total')).toBe(0);
    // the revocation is routed to the webhook
    await eventually(async () => (sampleValue(await metrics(), 'keyward_webhook_deliveries_total', { channel: 'ops', result: 'delivered' }) ?? 0) >= 1, 10_000);
    expect(delivered).toBeGreaterThanOrEqual(1);
  });

  it('counts store errors and shows NATS down while the servers are away', async () => {
    await nats.kill();
    try {
      await eventually(async () => sampleValue(await metrics(), 'keyward_nats_connected') === 0, 15_000);
    } finally {
      await nats.restart();
    }
    await eventually(async () => sampleValue(await metrics(), 'keyward_nats_connected') === 1, 15_000);

    await redis.kill();
    try {
      // an unknown key goes to the store, which is down: UNAVAILABLE, and a store error counted
      const err = await validate(generateKey('sk')).catch((e: ServiceError) => e);
      expect((err as ServiceError).code).toBe(status.UNAVAILABLE);
      const e = await metrics();
      expect(sumOf(e, 'keyward_store_errors_total', { op: 'get_by_hash' })).toBeGreaterThanOrEqual(1);
      expect(sampleValue(e, 'keyward_validations_total', { code: 'UNAVAILABLE', service: 'orders' })).toBeGreaterThanOrEqual(1);
      // the outbox (Redis) cannot be read either: the figure is left out, the scrape still answers
      expect(sampleValue(e, 'keyward_events_outbox_pending')).toBeUndefined();
    } finally {
      await redis.restart();
    }
  });
});
