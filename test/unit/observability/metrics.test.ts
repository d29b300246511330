import { status, type sendUnaryData, type ServerUnaryCall, type ServiceError } from '@grpc/grpc-js';
import { KeyValidator } from '../../../src/app/key-validator';
import { ManualClock } from '../../../src/domain/clock';
import { AlreadyExistsError, StoreUnavailableError } from '../../../src/domain/errors';
import { generateKey } from '../../../src/domain/key-format';
import { hashKey } from '../../../src/domain/key-hash';
import { toValidationEntry, type ValidationEntry } from '../../../src/domain/validation';
import { KeyAdminServiceService } from '../../../src/gen/keyward/v1/key_admin_service.pb';
import { measureAdminService } from '../../../src/observability/admin-metrics';
import { OVERFLOW_LABEL } from '../../../src/observability/fast-metrics';
import { createMetrics, noopMetrics, VALIDATION_BUCKETS, type Metrics } from '../../../src/observability/metrics';
import { startMetricsServer } from '../../../src/observability/metrics-server';
import { ObservedKeyValidator } from '../../../src/observability/observed-key-validator';
import { measureStore, snakeCase } from '../../../src/observability/store-metrics';
import { parsePrometheusText, sampleValue, scrape, sumOf, type Exposition } from '../../support/prometheus-text';
import { seededBytes } from '../helpers/bytes';
import { makeRecord } from '../helpers/records';

async function exposition(m: Metrics): Promise<Exposition> {
  return parsePrometheusText((await m.render()).body);
}

describe('Metrics: span export', () => {
  it('reads the tracing export counters at scrape time, and leaves them out while tracing is off', async () => {
    let stats: { exported: number; failed: number; dropped: number; queued: number } | undefined;
    const m = createMetrics({ processMetrics: false, spanExport: () => stats });
    let e = await exposition(m);
    expect(sampleValue(e, 'keyward_trace_spans_exported_total')).toBeUndefined();
    stats = { exported: 1200, failed: 10, dropped: 3, queued: 7 };
    e = await exposition(m);
    expect(sampleValue(e, 'keyward_trace_spans_exported_total')).toBe(1200);
    expect(sampleValue(e, 'keyward_trace_spans_failed_total')).toBe(10);
    expect(sampleValue(e, 'keyward_trace_spans_dropped_total')).toBe(3);
    expect(sampleValue(e, 'keyward_trace_spans_queued')).toBe(7);
  });
});

describe('Metrics', () => {
  it('counts validations by code and service, with a latency histogram and denial counters', async () => {
    const m = createMetrics({ processMetrics: false });
    m.validation('VALID', 'orders', 0.00002);
    m.validation('VALID', 'orders', 0.0003);
    m.validation('NOT_FOUND', 'orders', 0.002);
    m.validation('VALID', 'billing', 0.2);
    m.validation('RATE_LIMITED', 'orders', 0.00004);
    m.validation('USAGE_EXCEEDED', 'orders', 0.00004);
    const e = await exposition(m);
    expect(e.types.get('keyward_validations_total')).toBe('counter');
    expect(sampleValue(e, 'keyward_validations_total', { code: 'VALID', service: 'orders' })).toBe(2);
    expect(sampleValue(e, 'keyward_validations_total', { code: 'NOT_FOUND', service: 'orders' })).toBe(1);
    expect(sampleValue(e, 'keyward_validations_total', { code: 'VALID', service: 'billing' })).toBe(1);
    expect(sampleValue(e, 'keyward_ratelimit_denials_total')).toBe(1);
    expect(sampleValue(e, 'keyward_credit_denials_total')).toBe(1);

    expect(e.types.get('keyward_validation_duration_seconds')).toBe('histogram');
    const bucket = (le: string) => sampleValue(e, 'keyward_validation_duration_seconds_bucket', { le });
    expect(bucket('0.00005')).toBe(3); // 20 µs and two 40 µs
    expect(bucket('0.0005')).toBe(4);
    expect(bucket('0.0025')).toBe(5);
    expect(bucket('0.1')).toBe(5);
    expect(bucket('+Inf')).toBe(6);
    expect(sampleValue(e, 'keyward_validation_duration_seconds_count')).toBe(6);
    expect(sampleValue(e, 'keyward_validation_duration_seconds_sum')).toBeCloseTo(0.2024, 9);
    const les = e.samples.filter((s) => s.name === 'keyward_validation_duration_seconds_bucket').map((s) => s.labels.le);
    expect(les).toEqual([...VALIDATION_BUCKETS.map(String), '+Inf']);
  });

  it('caps the (code, service) series: beyond the cap new services count as _other', async () => {
    const m = createMetrics({ processMetrics: false, maxValidationSeries: 3 });
    for (const s of ['a', 'b', 'c', 'd', 'e', 'a']) m.validation('NOT_FOUND', s, 0.001);
    const e = await exposition(m);
    const series = e.samples.filter((s) => s.name === 'keyward_validations_total');
    expect(series.map((s) => s.labels.service).sort()).toEqual(['_other', 'a', 'b', 'c']);
    expect(sampleValue(e, 'keyward_validations_total', { service: OVERFLOW_LABEL })).toBe(2);
    expect(sampleValue(e, 'keyward_validations_total', { service: 'a' })).toBe(2);
  });

  it('reads cache, relay, outbox and NATS figures when scraped', async () => {
    const m = createMetrics({ processMetrics: false });
    let e = await exposition(m);
    expect(sampleValue(e, 'keyward_cache_hits_total')).toBeUndefined(); // no cache: no sample
    expect(sampleValue(e, 'keyward_nats_connected')).toBeUndefined();

    const cache = { stats: { hits: 5, misses: 2, evictions: 1, staleServed: 0 }, size: 7 };
    let connected = true;
    let published = 3;
    m.observeCache(cache);
    m.observeEvents({
      connected: () => connected,
      relay: { stats: () => ({ published, publishFailures: 1 }) },
      outbox: { size: async () => 4 },
    });
    e = await exposition(m);
    expect(sampleValue(e, 'keyward_cache_hits_total')).toBe(5);
    expect(sampleValue(e, 'keyward_cache_misses_total')).toBe(2);
    expect(sampleValue(e, 'keyward_cache_evictions_total')).toBe(1);
    expect(sampleValue(e, 'keyward_cache_entries')).toBe(7);
    expect(e.types.get('keyward_cache_entries')).toBe('gauge');
    expect(sampleValue(e, 'keyward_nats_connected')).toBe(1);
    expect(sampleValue(e, 'keyward_events_published_total')).toBe(3);
    expect(sampleValue(e, 'keyward_events_publish_failures_total')).toBe(1);
    expect(sampleValue(e, 'keyward_events_outbox_pending')).toBe(4);

    cache.stats.hits = 9;
    connected = false;
    published = 4;
    e = await exposition(m);
    expect(sampleValue(e, 'keyward_cache_hits_total')).toBe(9);
    expect(sampleValue(e, 'keyward_nats_connected')).toBe(0);
    expect(sampleValue(e, 'keyward_events_published_total')).toBe(4);
  });

  it('reads the lifecycle scheduler counts at scrape time, steps by label', async () => {
    const m = createMetrics({ processMetrics: false });
    let e = await exposition(m);
    expect(sampleValue(e, 'keyward_scheduler_ticks_total')).toBeUndefined(); // no scheduler: no sample
    const stats = { ticks: 7, ticksLeading: 5, steps: { expire: 3, auto_rotate: 1 }, recomputed: 2, deferred: 1, aborted: 0 };
    m.observeScheduler(() => stats);
    e = await exposition(m);
    expect(sampleValue(e, 'keyward_scheduler_ticks_total')).toBe(7);
    expect(sampleValue(e, 'keyward_scheduler_leading_ticks_total')).toBe(5);
    expect(sampleValue(e, 'keyward_scheduler_steps_total', { step: 'expire' })).toBe(3);
    expect(sampleValue(e, 'keyward_scheduler_steps_total', { step: 'auto_rotate' })).toBe(1);
    expect(e.types.get('keyward_scheduler_steps_total')).toBe('counter');
    expect(sampleValue(e, 'keyward_scheduler_recomputed_total')).toBe(2);
    expect(sampleValue(e, 'keyward_scheduler_deferred_total')).toBe(1);
    expect(sampleValue(e, 'keyward_scheduler_aborted_ticks_total')).toBe(0);
    stats.steps.expire = 4;
    e = await exposition(m);
    expect(sampleValue(e, 'keyward_scheduler_steps_total', { step: 'expire' })).toBe(4);
  });

  it('leaves out a figure whose source fails instead of failing the scrape', async () => {
    const m = createMetrics({ processMetrics: false });
    m.observeEvents({ outbox: { size: async () => Promise.reject(new StoreUnavailableError('redis down')) } });
    const e = await exposition(m);
    expect(sampleValue(e, 'keyward_events_outbox_pending')).toBeUndefined();
  });

  it('counts store operations, admin requests and webhook deliveries with labels', async () => {
    const m = createMetrics({ processMetrics: false });
    m.storeOperation('get_by_hash', 0.001, false);
    m.storeOperation('get_by_hash', 0.002, true);
    m.adminRequest('CreateKey', 'OK');
    m.adminRequest('CreateKey', 'UNAUTHENTICATED');
    m.webhookDelivery('ops', 'delivered');
    const e = await exposition(m);
    expect(sampleValue(e, 'keyward_store_errors_total', { op: 'get_by_hash' })).toBe(1);
    expect(sampleValue(e, 'keyward_store_operation_duration_seconds_count', { op: 'get_by_hash' })).toBe(2);
    expect(sampleValue(e, 'keyward_admin_requests_total', { method: 'CreateKey', code: 'OK' })).toBe(1);
    expect(sampleValue(e, 'keyward_admin_requests_total', { method: 'CreateKey', code: 'UNAUTHENTICATED' })).toBe(1);
    expect(sampleValue(e, 'keyward_webhook_deliveries_total', { channel: 'ops', result: 'delivered' })).toBe(1);
  });

  it('includes the process metrics by default, and every name follows the Prometheus conventions', async () => {
    const e = await exposition(createMetrics());
    expect(sampleValue(e, 'process_cpu_user_seconds_total')).toBeGreaterThanOrEqual(0);
    expect(e.types.has('nodejs_heap_size_used_bytes')).toBe(true);
    for (const [name, type] of e.types) {
      if (!name.startsWith('keyward_')) continue;
      if (type === 'counter') expect(name).toMatch(/_total$/);
      if (type === 'histogram') expect(name).toMatch(/_seconds$/);
    }
  });

  it('has a no-op variant', async () => {
    noopMetrics.validation('VALID', 'x', 1);
    expect((await noopMetrics.render()).body).toBe('');
  });
});

describe('the metrics server', () => {
  it('serves GET /metrics on a free port, 404 elsewhere, 405 for other methods, and closes', async () => {
    const m = createMetrics({ processMetrics: false });
    m.validation('VALID', 'orders', 0.001);
    const server = await startMetricsServer({ addr: '127.0.0.1:0', metrics: m });
    try {
      expect(server.address).toMatch(/^127\.0\.0\.1:\d+$/);
      const e = await scrape(server.address);
      expect(e.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
      expect(sampleValue(e, 'keyward_validations_total', { code: 'VALID' })).toBe(1);
      expect((await fetch(`http://${server.address}/`)).status).toBe(404);
      expect((await fetch(`http://${server.address}/metrics`, { method: 'POST' })).status).toBe(405);
      expect((await fetch(`http://${server.address}/metrics`, { method: 'HEAD' })).status).toBe(200);
    } finally {
      await server.close();
    }
    await expect(scrape(server.address)).rejects.toThrow();
  });

  it('answers 500 when rendering fails, and names the address it cannot bind', async () => {
    const errors: unknown[] = [];
    const server = await startMetricsServer({
      addr: '127.0.0.1:0',
      metrics: { render: () => Promise.reject(new Error('boom')) },
      onError: (err) => errors.push(err),
    });
    try {
      expect((await fetch(`http://${server.address}/metrics`)).status).toBe(500);
      expect(errors).toHaveLength(1);
      await expect(startMetricsServer({ addr: server.address, metrics: createMetrics({ processMetrics: false }) })).rejects.toThrow(
        `cannot listen on ${server.address} for metrics`,
      );
    } finally {
      await server.close();
    }
    await expect(startMetricsServer({ addr: 'nonsense', metrics: noopMetrics })).rejects.toThrow(/host:port/);
  });

  it('binds IPv6 addresses', async () => {
    const server = await startMetricsServer({ addr: '[::1]:0', metrics: createMetrics({ processMetrics: false }) });
    expect(server.address).toMatch(/^\[::1\]:\d+$/);
    await server.close();
  });
});

describe('measureStore', () => {
  class Store {
    #secret = 'private field';
    calls = 0;
    async getByHash(hash: string) {
      this.calls++;
      if (hash === 'down') throw new StoreUnavailableError('redis down');
      if (hash === 'taken') throw new AlreadyExistsError('taken');
      if (hash === 'bug') throw new Error('WRONGTYPE');
      return `${this.#secret}:${hash}`;
    }
    async close() {}
  }

  it('times every call and counts store failures, not domain outcomes, keeping `this`', async () => {
    const calls: [string, boolean][] = [];
    const store = measureStore(new Store(), { storeOperation: (op, s, failed) => calls.push([op, failed]) });
    await expect(store.getByHash('x')).resolves.toBe('private field:x');
    await expect(store.getByHash('down')).rejects.toThrow(StoreUnavailableError);
    await expect(store.getByHash('taken')).rejects.toThrow(AlreadyExistsError);
    await expect(store.getByHash('bug')).rejects.toThrow('WRONGTYPE');
    await store.close();
    expect(calls).toEqual([
      ['get_by_hash', false],
      ['get_by_hash', true],
      ['get_by_hash', false],
      ['get_by_hash', true],
    ]);
    expect(store.calls).toBe(4);
    expect(store).toBeInstanceOf(Store);
    expect(store.constructor.name).toBe('Store');
    expect(store.getByHash).toBe(store.getByHash); // one wrapper per method
  });

  it('prefixes ops when asked', async () => {
    const ops: string[] = [];
    await measureStore(new Store(), { storeOperation: (op) => ops.push(op) }, 'policy_').getByHash('x');
    expect(ops).toEqual(['policy_get_by_hash']);
    expect(snakeCase('addUsage')).toBe('add_usage');
  });
});

describe('ObservedKeyValidator', () => {
  const clock = new ManualClock(1_000);
  const key = generateKey('sk', seededBytes(5));
  const rec = makeRecord({ hash: hashKey(key), service: 'orders' });
  const input = (k: string, service = '') => KeyValidator.checkRequest({ key: k, service, requiredScopes: [], clientIp: '', cost: 1 });

  it('counts synchronous and asynchronous decisions, with the key\'s service when none was asked', async () => {
    const seen: [string, string][] = [];
    let asyncLookup = false;
    const v = new ObservedKeyValidator({
      clock,
      metrics: { validation: (code, service, seconds) => (expect(seconds).toBeGreaterThanOrEqual(0), seen.push([code, service])) },
      source: {
        lookup: (hash): ValidationEntry | undefined | Promise<ValidationEntry | undefined> => {
          const entry = hash === rec.hash ? toValidationEntry(rec) : undefined;
          return asyncLookup ? Promise.resolve(entry) : entry;
        },
      },
    });
    expect(v.validate(input('not-a-key', 'orders'))).toMatchObject({ code: 'MALFORMED' });
    expect(v.validate(input(key))).toMatchObject({ code: 'VALID' });
    asyncLookup = true;
    await expect(v.validate(input(key, 'billing'))).resolves.toMatchObject({ code: 'NOT_FOUND' });
    expect(seen).toEqual([
      ['MALFORMED', 'orders'],
      ['VALID', 'orders'],
      ['NOT_FOUND', 'billing'],
    ]);
  });

  it('counts a failed lookup as UNAVAILABLE and rethrows', async () => {
    const seen: string[] = [];
    const v = new ObservedKeyValidator({
      clock,
      metrics: { validation: (code) => seen.push(code) },
      source: { lookup: () => Promise.reject(new StoreUnavailableError('down')) },
    });
    await expect(v.validate(input(key))).rejects.toThrow(StoreUnavailableError);
    expect(seen).toEqual(['UNAVAILABLE']);
  });
});

describe('measureAdminService', () => {
  const call = {} as ServerUnaryCall<unknown, unknown>;

  it('counts each unary admin call with its method and status name', async () => {
    const seen: [string, string][] = [];
    const impl = {
      createKey: (_c: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) => cb(null, { ok: true }),
      getKey: (_c: ServerUnaryCall<unknown, unknown>, cb: sendUnaryData<unknown>) =>
        cb({ code: status.UNAUTHENTICATED, details: 'no' } as ServiceError, null),
    };
    const wrapped = measureAdminService(impl, KeyAdminServiceService, { adminRequest: (m, c) => seen.push([m, c]) }) as typeof impl;
    const results: unknown[] = [];
    wrapped.createKey(call, (err, res) => results.push([err, res]));
    wrapped.getKey(call, (err) => results.push(err?.code));
    expect(seen).toEqual([
      ['CreateKey', 'OK'],
      ['GetKey', 'UNAUTHENTICATED'],
    ]);
    expect(results).toEqual([[null, { ok: true }], status.UNAUTHENTICATED]);
  });

  it('gives the same scrape through the whole path', async () => {
    const m = createMetrics({ processMetrics: false });
    m.adminRequest('RevokeKey', 'NOT_FOUND');
    expect(sumOf(await exposition(m), 'keyward_admin_requests_total')).toBe(1);
  });
});
