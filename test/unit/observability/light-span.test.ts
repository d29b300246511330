import { ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, TraceFlags } from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AlwaysOffSampler, AlwaysOnSampler, ParentBasedSampler, type IdGenerator } from '@opentelemetry/sdk-trace-base';
import { InMemorySpanExporter, NodeTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-node';
import { LightSpan, LightSpanStarter, toHrTime } from '../../../src/observability/light-span';
import { encodeTraceRequest } from '../../../src/observability/otlp-trace-request';
import { SpanBatchEncoder } from '../../../src/observability/span-batch-codec';

const ids: IdGenerator = { generateTraceId: () => '5b8efff798038103d269b633813fc60c', generateSpanId: () => 'eee19b7ec3c1b174' };
const resource = resourceFromAttributes({ 'service.name': 'light-test' });
const remote = trace.setSpanContext(ROOT_CONTEXT, {
  traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
  spanId: '00f067aa0ba902b7',
  traceFlags: TraceFlags.SAMPLED,
  isRemote: true,
  traceState: new TraceState('vendor=abc'),
});

function setup(root = new AlwaysOnSampler()) {
  const exporter = new InMemorySpanExporter();
  const sampler = new ParentBasedSampler({ root });
  const provider = new NodeTracerProvider({ resource, idGenerator: ids, sampler, spanProcessors: [new SimpleSpanProcessor(exporter)] });
  const tracer = provider.getTracer('keyward', '1.2.3');
  const ended: LightSpan[] = [];
  const starter = new LightSpanStarter({ sampler, idGenerator: ids, sink: { onEndLight: (s) => ended.push(s) }, resource, scope: (tracer as unknown as { instrumentationScope: never }).instrumentationScope });
  return { exporter, tracer, ended, starter };
}

const attrs = { 'rpc.system': 'grpc', 'rpc.service': 'keyward.v1.KeyService', 'rpc.method': 'ValidateKey' };

describe('LightSpanStarter / LightSpan', () => {
  it('exports the very bytes the SDK span of the same call would', () => {
    const { exporter, tracer, ended, starter } = setup();
    const light = starter.start('keyward.v1.KeyService/ValidateKey', attrs, remote) as LightSpan;
    expect(light).toBeInstanceOf(LightSpan);
    light.setAttribute('keyward.cache.result', 'hit');
    light.setAttributes({ 'rpc.grpc.status_code': 14, 'keyward.scopes': ['a', 'b'] });
    light.setAttribute('keyward.cache.result', 'coalesced'); // replaces, keeps its place
    const eventAt = Date.now();
    light.addEvent('retry', { attempt: 2 }, eventAt);
    light.setStatus({ code: SpanStatusCode.ERROR, message: 'UNAVAILABLE' });
    light.end();
    light.setAttribute('late', true); // ignored once ended
    expect(ended).toEqual([light]);
    expect(light.isRecording()).toBe(false);

    const sdk = tracer.startSpan('keyward.v1.KeyService/ValidateKey', { kind: SpanKind.SERVER, attributes: attrs, startTime: toHrTime(light.startMillis) }, remote);
    sdk.setAttribute('keyward.cache.result', 'coalesced');
    sdk.setAttributes({ 'rpc.grpc.status_code': 14, 'keyward.scopes': ['a', 'b'] });
    sdk.addEvent('retry', { attempt: 2 }, eventAt);
    sdk.setStatus({ code: SpanStatusCode.ERROR, message: 'UNAVAILABLE' });
    sdk.end(toHrTime(light.endMillis));
    const spans = exporter.getFinishedSpans();

    const lightBatch = new SpanBatchEncoder();
    lightBatch.addLight(light);
    const sdkBatch = new SpanBatchEncoder();
    sdkBatch.add(spans[0]);
    const expected = Buffer.from(ProtobufTraceSerializer.serializeRequest(spans)!);
    expect(Buffer.from(encodeTraceRequest(sdkBatch.finish()))).toEqual(expected);
    expect(Buffer.from(encodeTraceRequest(structuredClone(lightBatch.finish())))).toEqual(expected);
  });

  it('samples as the SDK does: caller decisions honoured, roots by the root sampler, context passed on when unsampled', () => {
    const { starter } = setup(new AlwaysOffSampler());
    const child = starter.start('x/Y', attrs, remote);
    expect(child.isRecording()).toBe(true);
    expect(child.spanContext()).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', traceFlags: TraceFlags.SAMPLED });
    expect(child.spanContext().traceState?.get('vendor')).toBe('abc');
    const root = starter.start('x/Y', attrs, ROOT_CONTEXT);
    expect(root.isRecording()).toBe(false);
    const unsampledCaller = trace.setSpanContext(ROOT_CONTEXT, { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', spanId: '00f067aa0ba902b7', traceFlags: TraceFlags.NONE, isRemote: true });
    const passOn = starter.start('x/Y', attrs, unsampledCaller);
    expect(passOn.isRecording()).toBe(false);
    expect(passOn.spanContext()).toMatchObject({ traceId: '4bf92f3577b34da6a3ce929d0e0e4736', traceFlags: TraceFlags.NONE });
  });

  it('is the parent of the SDK spans started in its context', () => {
    const { exporter, tracer, starter } = setup();
    const light = starter.start('x/Y', attrs, ROOT_CONTEXT);
    tracer.startSpan('hgetall', { kind: SpanKind.CLIENT }, trace.setSpan(ROOT_CONTEXT, light)).end();
    const [redis] = exporter.getFinishedSpans();
    expect(redis.parentSpanContext?.spanId).toBe(light.spanContext().spanId);
    expect(redis.parentSpanContext?.isRemote).toBeFalsy();
    expect(redis.spanContext().traceId).toBe(light.spanContext().traceId);
  });

  it('keeps only valid attribute values, as the SDK does, and bounds events and links', () => {
    const { starter, ended } = setup();
    const span = starter.start('op', {}, ROOT_CONTEXT) as LightSpan;
    span.setAttribute('ok', ['a', 'b']);
    span.setAttribute('mixed', ['a', 1] as unknown as string[]);
    span.setAttribute('objects', [{ a: 1 }] as unknown as string[]);
    span.addEvent('e', { fine: 1, bad: { nested: true } as unknown as string });
    for (let i = 0; i < 200; i++) span.addEvent(`e${i}`);
    for (let i = 0; i < 200; i++) span.addLink({ context: span.spanContext() });
    span.end();
    expect(ended[0].keys).toEqual(['ok']);
    expect(ended[0].events![0].attributes).toEqual({ fine: 1 });
    expect(ended[0].events).toHaveLength(128);
    expect(ended[0].links).toHaveLength(128);
  });
});
