import { SpanKind, SpanStatusCode, TraceFlags, trace, ROOT_CONTEXT, type Span } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOnSampler, RandomIdGenerator } from '@opentelemetry/sdk-trace-base';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-node';
import { generateKey } from '../../../src/domain/key-format';
import { LightSpanStarter, type LightSpan } from '../../../src/observability/light-span';
import { createRedactor } from '../../../src/observability/log-redaction';
import { encodeTraceRequest } from '../../../src/observability/otlp-trace-request';
import { SPAN, SpanBatchEncoder } from '../../../src/observability/span-batch-codec';
import { redactBatch } from '../../../src/observability/span-redaction';
import { decodeTraces } from '../../support/otlp-receiver';
import { seededBytes } from '../helpers/bytes';

const sdkBytes = (spans: ReadableSpan[]): Buffer => Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!);

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
  consumer.addEvent('bare');
  consumer.setStatus({ code: SpanStatusCode.ERROR, message: 'StoreUnavailableError' });
  consumer.end();
  const child = b.startSpan('hgetall', { kind: SpanKind.CLIENT, attributes: { 'db.query.text': 'hgetall {kw}:h:abc' } }, trace.setSpan(ROOT_CONTEXT, server));
  child.end();
  // lengths past one varint byte, UTF-8, negative and 64-bit integers, doubles
  const odd = a.startSpan(`ünïcode ✓ ${'x'.repeat(200)}`, {
    attributes: { long: 'y'.repeat(20_000), 'ключ': 'значение 🔑', neg: -5, big: 2 ** 40, huge: 2 ** 63, tiny: 1e-9, doubles: [1.5, -2], flags: [true, false] },
  });
  odd.end();
  const otherExporter = new InMemorySpanExporter();
  const other = new NodeTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'other' }, { schemaUrl: 'https://opentelemetry.io/schemas/1.30.0' }),
    spanProcessors: [new SimpleSpanProcessor(otherExporter)],
  });
  other.getTracer('elsewhere', undefined, { schemaUrl: 'https://example.com/s' }).startSpan('second resource').end();
  const [second] = otherExporter.getFinishedSpans();
  await other.shutdown();
  server.end();
  const spans = exporter.getFinishedSpans();
  await provider.shutdown();
  return [...spans.slice(0, 2), second, ...spans.slice(2)];
}

describe('SpanBatchEncoder / encodeTraceRequest', () => {
  it('writes the OTLP protobuf of a batch byte for byte as the SDK serialises the original spans', async () => {
    const spans = await finishedSpans();
    const encoder = new SpanBatchEncoder(2);
    for (const s of spans) encoder.add(s);
    expect(encoder.count).toBe(5);
    expect(new Set(spans.map((s) => s.resource)).size).toBe(2);
    const batch = encoder.finish();
    // the batch survives a structured clone (what postMessage does)
    expect(Buffer.from(encodeTraceRequest(structuredClone(batch)))).toEqual(sdkBytes(spans));
  });

  it('matches the SDK on a full batch of alike spans with interleaved scopes (grouped by resource, then scope)', async () => {
    const spans = await finishedSpans();
    const many = Array.from({ length: 512 }, (_, i) => spans[i % spans.length]);
    const encoder = new SpanBatchEncoder(512);
    for (const s of many) encoder.add(s);
    const ours = Buffer.from(encodeTraceRequest(structuredClone(encoder.finish())));
    const theirs = sdkBytes(many);
    expect(ours.length).toBe(theirs.length);
    expect(ours.equals(theirs)).toBe(true); // (toEqual on megabytes takes seconds)
  });

  it('carries each distinct string once per batch', async () => {
    const spans = await finishedSpans();
    const encoder = new SpanBatchEncoder();
    const server = spans.find((s) => s.kind === SpanKind.SERVER)!;
    for (let i = 0; i < 50; i++) encoder.add(server);
    const batch = encoder.finish();
    expect(batch.count).toBe(50);
    expect(batch.strings.filter((s) => s === 'keyward.v1.KeyService/ValidateKey')).toHaveLength(1);
    expect(batch.ids).toHaveLength(50 * 64);
  });
});

describe('span layout', () => {
  it('gives each fixed number of a span its own offset, 0 to the attribute count, which comes last', () => {
    const offsets = Object.values(SPAN).sort((a, b) => a - b);
    expect(offsets).toEqual(offsets.map((_, i) => i));
    expect(SPAN.attributeCount).toBe(offsets.length - 1);
  });
});

describe('dropped attribute, event and link counts', () => {
  /** 130 attributes, 200 events and 150 links: over the 128 each that spans keep. */
  const overfill = (span: Span) => {
    for (let i = 0; i < 130; i++) span.setAttribute(`a${i}`, i);
    for (let i = 0; i < 200; i++) span.addEvent(`e${i}`);
    for (let i = 0; i < 150; i++) span.addLink({ context: span.spanContext() });
  };

  it('reaches the OTLP span for keyward\'s light server spans', () => {
    const ended: LightSpan[] = [];
    const starter = new LightSpanStarter({
      sampler: new AlwaysOnSampler(),
      idGenerator: new RandomIdGenerator(),
      sink: { onEndLight: (s) => ended.push(s) },
      resource: resourceFromAttributes({ 'service.name': 'codec-test' }),
      scope: { name: 'keyward' },
    });
    const span = starter.start('keyward.v1.KeyService/ValidateKey', {}, ROOT_CONTEXT);
    overfill(span);
    span.end();
    const encoder = new SpanBatchEncoder();
    encoder.addLight(ended[0]);
    const [otlp] = decodeTraces(encodeTraceRequest(structuredClone(encoder.finish())));
    expect(Object.keys(otlp.attributes)).toHaveLength(128);
    expect(otlp.events).toHaveLength(128);
    expect(otlp.links).toHaveLength(128);
    expect(otlp.dropped).toEqual({ attributes: 2, events: 72, links: 22 });
  });

  it('reaches the OTLP span for SDK spans, byte for byte as the SDK writes them', async () => {
    const exporter = new InMemorySpanExporter();
    const provider = new NodeTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    const span = provider.getTracer('t').startSpan('busy');
    overfill(span);
    span.end();
    const spans = exporter.getFinishedSpans();
    await provider.shutdown();
    const encoder = new SpanBatchEncoder();
    encoder.add(spans[0]);
    const ours = encodeTraceRequest(structuredClone(encoder.finish()));
    expect(Buffer.from(ours)).toEqual(sdkBytes(spans));
    expect(decodeTraces(ours)[0].dropped).toEqual({ attributes: 2, events: 72, links: 22 });
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
    const redacted = redactBatch(batch, createRedactor({ secrets: ['the-admin-token-value'] }));
    // protobuf strings are their UTF-8 bytes: the request's text shows whatever a span carried
    const text = Buffer.from(encodeTraceRequest(redacted)).toString('latin1');
    expect(text).not.toContain(key.slice(12));
    expect(text).not.toContain('the-admin-token-value');
    expect(text).toContain('Bearer [redacted]');
    expect(text).toContain(`${key.slice(0, 12)}`);
    // only strings changed: the same request as the SDK makes of the redacted values
    expect(redacted.strings).toContain('a.number');
    expect(redacted.numbers).toBe(batch.numbers);
    // the original batch is left as it was
    expect(batch.strings.some((s) => s.includes(key))).toBe(true);
  });
});
