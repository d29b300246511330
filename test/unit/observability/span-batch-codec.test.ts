import { SpanKind, SpanStatusCode, TraceFlags, trace, ROOT_CONTEXT } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { generateKey } from '../../../src/domain/key-format';
import { createRedactor } from '../../../src/observability/log-redaction';
import { decodeSpanBatch, SpanBatchEncoder, type DecodeDeps } from '../../../src/observability/span-batch-codec';
import { redactBatch } from '../../../src/observability/span-redaction';
import { seededBytes } from '../helpers/bytes';

const deps: DecodeDeps = {
  resource: (attributes, schemaUrl) => resourceFromAttributes(attributes, { schemaUrl }),
  traceState: (s) => new TraceState(s),
};

/** Finished spans of every shape the encoder handles, from the real SDK (not registered globally). */
async function finishedSpans(): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'codec-test', 'process.pid': 42 }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const a = provider.getTracer('keyward', '1.2.3');
  const b = provider.getTracer('@opentelemetry/instrumentation-ioredis');
  const server = a.startSpan('keyward.v1.KeyService/ValidateKey', {
    kind: SpanKind.SERVER,
    attributes: { 'rpc.system': 'grpc', 'rpc.method': 'ValidateKey', 'rpc.grpc.status_code': 0, ratio: 0.25, ok: true, no: false },
  });
  const remoteParent = trace.setSpanContext(ROOT_CONTEXT, {
    traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
    spanId: '00f067aa0ba902b7',
    traceFlags: TraceFlags.SAMPLED,
    isRemote: true,
    traceState: new TraceState('vendor=abc,other=1'),
  });
  const consumer = a.startSpan(
    'process keyward.events.orders.key.revoked',
    {
      kind: SpanKind.CONSUMER,
      attributes: { scopes: ['orders:read', 'orders:write'], counts: [1, 2, 3] },
      links: [{ context: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 }, attributes: { why: 'replay' } }],
    },
    remoteParent,
  );
  consumer.addEvent('retry', { attempt: 2 });
  consumer.setStatus({ code: SpanStatusCode.ERROR, message: 'StoreUnavailableError' });
  consumer.end();
  const child = b.startSpan('hgetall', { kind: SpanKind.CLIENT, attributes: { 'db.query.text': 'hgetall {kw}:h:abc' } }, trace.setSpan(ROOT_CONTEXT, server));
  child.end();
  server.end();
  const spans = exporter.getFinishedSpans();
  await provider.shutdown();
  return spans;
}

describe('SpanBatchEncoder / decodeSpanBatch', () => {
  it('round-trips spans so that their OTLP protobuf is byte for byte what the SDK makes of the originals', async () => {
    const spans = await finishedSpans();
    const encoder = new SpanBatchEncoder(2);
    for (const s of spans) encoder.add(s);
    expect(encoder.count).toBe(3);
    const batch = encoder.finish();
    // the batch survives a structured clone (what postMessage does)
    const decoded = decodeSpanBatch(structuredClone(batch), deps);
    expect(Buffer.from(ProtobufTraceSerializer.serializeRequest(decoded)!)).toEqual(Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!));

    const consumer = decoded.find((s) => s.kind === SpanKind.CONSUMER)!;
    expect(consumer.parentSpanContext).toMatchObject({ spanId: '00f067aa0ba902b7', isRemote: true });
    expect(consumer.spanContext().traceState?.get('vendor')).toBe('abc');
    expect(consumer.attributes).toEqual({ scopes: ['orders:read', 'orders:write'], counts: [1, 2, 3] });
    expect(consumer.events.map((e) => [e.name, e.attributes])).toEqual([['retry', { attempt: 2 }]]);
    expect(consumer.links[0]).toMatchObject({ context: { spanId: 'b7ad6b7169203331' }, attributes: { why: 'replay' } });
    expect(consumer.status).toEqual({ code: SpanStatusCode.ERROR, message: 'StoreUnavailableError' });
    const server = decoded.find((s) => s.kind === SpanKind.SERVER)!;
    expect(server.parentSpanContext).toBeUndefined();
    expect(server.attributes).toEqual({ 'rpc.system': 'grpc', 'rpc.method': 'ValidateKey', 'rpc.grpc.status_code': 0, ratio: 0.25, ok: true, no: false });
    expect(server.instrumentationScope).toEqual({ name: 'keyward', version: '1.2.3', schemaUrl: undefined });
    const client = decoded.find((s) => s.kind === SpanKind.CLIENT)!;
    expect(client.parentSpanContext?.spanId).toBe(server.spanContext().spanId);
    expect(client.duration[0] * 1e9 + client.duration[1]).toBeGreaterThanOrEqual(0);
    // spans of one resource share one decoded resource (the serializer groups by identity)
    expect(new Set(decoded.map((s) => s.resource)).size).toBe(1);
  });

  it('carries each distinct string once per batch', async () => {
    const spans = await finishedSpans();
    const encoder = new SpanBatchEncoder();
    for (let i = 0; i < 50; i++) encoder.add(spans[2]);
    const batch = encoder.finish();
    expect(batch.count).toBe(50);
    expect(batch.strings.filter((s) => s === 'keyward.v1.KeyService/ValidateKey')).toHaveLength(1);
    expect(batch.ids).toHaveLength(50 * 64);
  });
});

describe('redactBatch', () => {
  it('removes keys and tokens from names, attribute values, arrays, events, links and status messages', () => {
    const key = generateKey('sk_live', seededBytes(9));
    const exporter = new InMemorySpanExporter();
    const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const span = provider.getTracer('t').startSpan(`op ${key}`, {
      attributes: { 'a.string': `k=${key}`, 'a.list': ['x', `Bearer ${key}`], 'a.number': 3, 'a.secret': 'the-admin-token-value' },
      links: [{ context: { traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 }, attributes: { l: key } }],
    });
    span.addEvent('exception', { 'exception.message': `bad key ${key}` });
    span.setStatus({ code: SpanStatusCode.ERROR, message: `failed for ${key}` });
    span.end();
    const encoder = new SpanBatchEncoder();
    encoder.add(exporter.getFinishedSpans()[0]);
    const batch = encoder.finish();
    const [out] = decodeSpanBatch(redactBatch(batch, createRedactor({ secrets: ['the-admin-token-value'] })), deps);
    const text = JSON.stringify([out.name, out.attributes, out.events, out.links.map((l) => l.attributes), out.status]);
    expect(text).not.toContain(key.slice(12));
    expect(text).not.toContain('the-admin-token-value');
    expect(out.attributes['a.number']).toBe(3);
    expect(out.attributes['a.list']).toEqual(['x', 'Bearer [redacted]']);
    expect(out.links[0].context.spanId).toBe('b7ad6b7169203331');
    // the original batch is left as it was
    expect(batch.strings.some((s) => s.includes(key))).toBe(true);
  });
});
