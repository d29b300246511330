import { Metadata } from '@grpc/grpc-js';
import { CreateKeyRequest, GetKeyRequest, RevokeKeyRequest } from '../../src/gen/keyward/v1/key_admin_service.pb';
import { ValidateKeyRequest, ValidationCode } from '../../src/gen/keyward/v1/key_service.pb';
import { eventually } from '../support/health';
import { sampleValue, scrape } from '../support/prometheus-text';
import { call, startKeyward, type KeywardProcess } from '../support/keyward-process';
import { startNats, type NatsServerHandle } from '../support/nats-server';
import { SpanKind, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

/*
 * Traces end to end: the built `keyward serve` with OTEL_EXPORTER_OTLP_ENDPOINT pointing at a real
 * OTLP/HTTP receiver in this test (protobuf decoded), Redis for the store and NATS for events.
 */

let receiver: OtlpReceiver;
let redis: RedisServerHandle;
let nats: NatsServerHandle;
let a: KeywardProcess;
let b: KeywardProcess;

const tracingEnv = (name: string) => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
  OTEL_SERVICE_NAME: name,
  OTEL_BSP_SCHEDULE_DELAY: '100',
  OTEL_TRACES_SAMPLER: 'parentbased_traceidratio',
  OTEL_TRACES_SAMPLER_ARG: '1.0',
  KEYWARD_REDIS_URL: redis.url,
  KEYWARD_NATS_URL: nats.url,
  KEYWARD_CACHE_TTL: '1h', // only events can tell the other sidecar
});

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  [redis, nats] = await Promise.all([startRedis(), startNats()]);
  [a, b] = await Promise.all([startKeyward(tracingEnv('keyward-a')), startKeyward(tracingEnv('keyward-b'))]);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await Promise.allSettled([redis?.stop(), nats?.stop(), receiver?.close()]);
});

const children = (spans: ReceivedSpan[], parent: ReceivedSpan) => spans.filter((s) => s.parentSpanId === parent.spanId && s.traceId === parent.traceId);
const serverSpans = (spans: ReceivedSpan[], service: string, method: string) =>
  spans.filter((s) => s.service === service && s.kind === SpanKind.SERVER && s.attributes['rpc.method'] === method);

async function createKey(p: KeywardProcess, service = 'orders'): Promise<{ id: string; secret: string }> {
  const res = await call(p.admin.createKey.bind(p.admin), CreateKeyRequest.fromPartial({ service, owner: 'o', name: 'n', scopes: ['orders:*'] }), p.root);
  return { id: res.key!.id, secret: res.secret };
}

describe('traces', () => {
  it('says at start-up that tracing is on, and where to', () => {
    const line = a.logs.find((l) => l.msg === 'tracing on: exporting spans over OTLP/HTTP');
    expect(line).toMatchObject({ endpoint: `${receiver.endpoint}/`, sampler: 'parentbased_traceidratio', ratio: 1 });
  });

  it('an admin call (CreateKey) is a server span with Redis client spans below it, no argument in them', async () => {
    const { id } = await createKey(a);
    let server: ReceivedSpan | undefined;
    await receiver.waitFor((spans) => {
      server = serverSpans(spans, 'keyward-a', 'CreateKey').at(-1);
      return server !== undefined && children(spans, server).some((s) => s.attributes['db.system.name'] === 'redis');
    });
    expect(server!.name).toBe('keyward.v1.KeyAdminService/CreateKey');
    expect(server!.attributes['rpc.service']).toBe('keyward.v1.KeyAdminService');
    expect(server!.attributes['rpc.grpc.status_code']).toBe(0);
    expect(server!.parentSpanId).toBe('');
    const redisSpans = children(receiver.spans, server!).filter((s) => s.attributes['db.system.name'] === 'redis');
    expect(redisSpans.every((s) => s.kind === SpanKind.CLIENT)).toBe(true);
    for (const s of redisSpans) {
      const statement = String(s.attributes['db.query.text']);
      // command and key names only: the id may appear in a key name, never a record or a value
      expect(statement).toMatch(/^[a-z]+( \S+)*$/);
      expect(statement).not.toContain('"service"');
      expect(statement).not.toMatch(/orders:\*/);
    }
    expect(redisSpans.map((s) => String(s.attributes['db.query.text'])).join('\n')).toContain(id);
    // no metadata of the call is recorded
    expect(Object.keys(server!.attributes).filter((k) => k.startsWith('rpc.request.metadata'))).toEqual([]);
  });

  it('a ValidateKey call is a server span with the validation steps as children (cache lookup and store read on a miss; a hit is an attribute)', async () => {
    const { id, secret } = await createKey(a);
    // b has never seen the key: a miss, a store read, then a cached hit
    for (let i = 0; i < 2; i++) {
      const res = await call(b.keys.validateKey.bind(b.keys), ValidateKeyRequest.fromPartial({ key: secret, service: 'orders' }), new Metadata());
      expect(res.code).toBe(ValidationCode.VALIDATION_CODE_VALID);
    }
    let miss: ReceivedSpan | undefined;
    let hit: ReceivedSpan | undefined;
    await receiver.waitFor((spans) => {
      const calls = serverSpans(spans, 'keyward-b', 'ValidateKey');
      miss = calls.find((s) => children(spans, s).some((c) => c.name === 'keyward.cache.lookup'));
      hit = calls.find((s) => s.attributes['keyward.cache.result'] === 'hit' && s.attributes['keyward.key.id'] === id);
      const lookup = miss && children(spans, miss).find((c) => c.name === 'keyward.cache.lookup');
      const read = lookup && children(spans, lookup).find((c) => c.name === 'keyward.store.read');
      return hit !== undefined && read !== undefined && children(spans, read).length > 0;
    });
    expect(miss!.name).toBe('keyward.v1.KeyService/ValidateKey');
    expect(miss!.attributes).toMatchObject({ 'rpc.system': 'grpc', 'rpc.service': 'keyward.v1.KeyService', 'rpc.method': 'ValidateKey', 'rpc.grpc.status_code': 0 });
    const missLookup = children(receiver.spans, miss!).find((s) => s.name === 'keyward.cache.lookup')!;
    expect(missLookup.attributes['keyward.cache.result']).toBe('miss');
    const read = children(receiver.spans, missLookup).find((s) => s.name === 'keyward.store.read')!;
    expect(children(receiver.spans, read).map((s) => s.attributes['db.operation.name'])).toContain('hgetall');
    // the hit answered from memory in a microsecond: an attribute of the server span, not a span
    expect(children(receiver.spans, hit!)).toEqual([]);
  });

  it('continues a caller\'s trace (traceparent metadata) and honours its sampling decision', async () => {
    const { secret } = await createKey(a);
    const md = new Metadata();
    md.set('traceparent', '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    await call(a.keys.validateKey.bind(a.keys), ValidateKeyRequest.fromPartial({ key: secret, service: '' }), md);
    await receiver.waitFor((spans) => spans.some((s) => s.traceId === '4bf92f3577b34da6a3ce929d0e0e4736'));
    const server = receiver.spans.find((s) => s.traceId === '4bf92f3577b34da6a3ce929d0e0e4736' && s.kind === SpanKind.SERVER)!;
    expect(server.parentSpanId).toBe('00f067aa0ba902b7');

    const before = receiver.spans.length;
    const unsampled = new Metadata();
    unsampled.set('traceparent', '00-5bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00');
    await call(a.keys.validateKey.bind(a.keys), ValidateKeyRequest.fromPartial({ key: secret, service: '' }), unsampled);
    await new Promise((r) => setTimeout(r, 500));
    expect(receiver.spans.slice(before).some((s) => s.traceId === '5bf92f3577b34da6a3ce929d0e0e4736')).toBe(false);
  });

  it('a RevokeKey on one sidecar continues, through NATS, into the other sidecar\'s consume span', async () => {
    const { id, secret } = await createKey(a);
    const validate = () =>
      call(b.keys.validateKey.bind(b.keys), ValidateKeyRequest.fromPartial({ key: secret, service: 'orders' }), new Metadata());
    expect((await validate()).code).toBe(ValidationCode.VALIDATION_CODE_VALID); // cached in b for an hour
    await call(a.admin.revokeKey.bind(a.admin), RevokeKeyRequest.fromPartial({ keyId: id, reason: 'trace test' }), a.root);
    await eventually(async () => (await validate()).code === ValidationCode.VALIDATION_CODE_REVOKED, 10_000);

    let revoke: ReceivedSpan | undefined;
    let consume: ReceivedSpan | undefined;
    await receiver.waitFor((spans) => {
      revoke = serverSpans(spans, 'keyward-a', 'RevokeKey').at(-1);
      consume = spans.find(
        (s) => s.service === 'keyward-b' && s.kind === SpanKind.CONSUMER && s.attributes['keyward.key.id'] === id && s.attributes['keyward.event.type'] === 'key.revoked',
      );
      return revoke !== undefined && consume !== undefined;
    });
    // one trace: RevokeKey (a) -> publish (whichever sidecar relays) -> process (b)
    expect(consume!.traceId).toBe(revoke!.traceId);
    const publish = receiver.spans.find((s) => s.spanId === consume!.parentSpanId)!;
    expect(publish).toBeDefined();
    expect(publish.kind).toBe(SpanKind.PRODUCER);
    expect(publish.name).toBe('publish keyward.events.orders.key.revoked');
    expect(publish.parentSpanId).toBe(revoke!.spanId);
    expect(publish.attributes).toMatchObject({ 'messaging.system': 'nats', 'messaging.destination.name': 'keyward.events.orders.key.revoked' });
    expect(consume!.name).toBe('process keyward.events.orders.key.revoked');
    expect(consume!.attributes['messaging.message.id']).toBe(publish.attributes['messaging.message.id']);
  });

  it('every export was a valid OTLP/HTTP protobuf request', () => {
    expect(receiver.bodies.length).toBeGreaterThan(0);
    expect(receiver.rejected).toEqual([]);
  });

  it('/metrics counts the spans exported (from the export worker) and none dropped', async () => {
    const m = await scrape(a.metricsAddr!);
    expect(sampleValue(m, 'keyward_trace_spans_exported_total')).toBeGreaterThan(0);
    expect(sampleValue(m, 'keyward_trace_spans_dropped_total')).toBe(0);
    expect(sampleValue(m, 'keyward_trace_spans_failed_total')).toBe(0);
    expect(sampleValue(m, 'keyward_trace_spans_queued')).toBeGreaterThanOrEqual(0);
  });
});
