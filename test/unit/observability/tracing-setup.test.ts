import { Writable } from 'node:stream';
import { context, ROOT_CONTEXT, trace } from '@opentelemetry/api';
import { createLogger } from '../../../src/logger';
import { redisStatement } from '../../../src/observability/redis-statement';
import { samplerFor } from '../../../src/observability/tracing';
import { tracingSettingsFromEnv } from '../../../src/observability/tracing-settings';
import { startTestTracing } from './tracing-harness';

describe('tracingSettingsFromEnv', () => {
  it('is off without an OTLP endpoint, whatever else is set', () => {
    expect(tracingSettingsFromEnv({}).enabled).toBe(false);
    expect(tracingSettingsFromEnv({ OTEL_SERVICE_NAME: 'x', OTEL_TRACES_SAMPLER: 'always_on', OTEL_EXPORTER_OTLP_ENDPOINT: ' ' }).enabled).toBe(false);
  });

  it('is on with either endpoint variable, unless disabled', () => {
    expect(tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' })).toMatchObject({
      enabled: true,
      endpoint: 'http://c:4318/',
      sampler: 'parentbased_traceidratio',
      ratio: 1,
      serviceName: 'keyward',
      warnings: [],
    });
    expect(tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://c:4318/v1/traces' }).enabled).toBe(true);
    expect(tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_SDK_DISABLED: 'true' }).enabled).toBe(false);
    expect(tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318', OTEL_TRACES_EXPORTER: 'none' }).enabled).toBe(false);
  });

  it('reads the sampler, its ratio and the service name', () => {
    const s = tracingSettingsFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318',
      OTEL_TRACES_SAMPLER: 'ParentBased_TraceIdRatio',
      OTEL_TRACES_SAMPLER_ARG: '0',
      OTEL_SERVICE_NAME: 'keyward-orders',
    });
    expect(s).toMatchObject({ sampler: 'parentbased_traceidratio', ratio: 0, serviceName: 'keyward-orders', warnings: [] });
    expect(tracingSettingsFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c', OTEL_TRACES_SAMPLER: 'always_off' }).sampler).toBe('always_off');
  });

  it('falls back, with a warning, on values it cannot use, and hides credentials in the endpoint', () => {
    const s = tracingSettingsFromEnv({
      OTEL_EXPORTER_OTLP_ENDPOINT: 'https://user:pass@collector:4318',
      OTEL_TRACES_SAMPLER: 'jaeger_remote',
      OTEL_TRACES_SAMPLER_ARG: '2',
      OTEL_EXPORTER_OTLP_PROTOCOL: 'grpc',
      OTEL_TRACES_EXPORTER: 'zipkin',
    });
    expect(s).toMatchObject({ enabled: true, sampler: 'parentbased_traceidratio', ratio: 1, endpoint: 'https://collector:4318/' });
    expect(s.warnings).toHaveLength(4);
    expect(JSON.stringify(s)).not.toContain('pass');
  });
});

describe('tracingSettingsFromEnv: batching (OTEL_BSP_*)', () => {
  const on = { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://c:4318' };

  it('uses the specification\'s defaults', () => {
    expect(tracingSettingsFromEnv(on).batch).toEqual({ maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMillis: 5000, exportTimeoutMillis: 30000 });
  });

  it('reads the four variables, and falls back with a warning on a value it cannot use', () => {
    const s = tracingSettingsFromEnv({
      ...on,
      OTEL_BSP_MAX_QUEUE_SIZE: '100',
      OTEL_BSP_MAX_EXPORT_BATCH_SIZE: '10',
      OTEL_BSP_SCHEDULE_DELAY: '0',
      OTEL_BSP_EXPORT_TIMEOUT: 'soon',
    });
    expect(s.batch).toEqual({ maxQueueSize: 100, maxExportBatchSize: 10, scheduledDelayMillis: 0, exportTimeoutMillis: 30000 });
    expect(s.warnings).toEqual([expect.stringContaining('OTEL_BSP_EXPORT_TIMEOUT=soon')]);
    expect(tracingSettingsFromEnv({ ...on, OTEL_BSP_MAX_QUEUE_SIZE: '0' }).batch.maxQueueSize).toBe(2048);
  });
});

describe('samplerFor', () => {
  it.each([
    ['parentbased_traceidratio', 1, 'ParentBased{root=AlwaysOnSampler'],
    ['parentbased_traceidratio', 0, 'ParentBased{root=AlwaysOffSampler'],
    ['parentbased_traceidratio', 0.25, 'ParentBased{root=TraceIdRatioBased{0.25}'],
    ['traceidratio', 0.5, 'TraceIdRatioBased{0.5}'],
    ['always_off', 1, 'AlwaysOffSampler'],
    ['parentbased_always_on', 0, 'ParentBased{root=AlwaysOnSampler'],
  ] as const)('%s at %d is %s…', (name, ratio, description) => {
    expect(samplerFor(name, ratio).toString()).toContain(description);
  });
});

describe('redisStatement', () => {
  it.each([
    ['hgetall', ['{kw}:h:abc'], 'hgetall {kw}:h:abc'],
    ['HSET', ['{kw}:k:key_1', 'field', 'a value'], 'hset {kw}:k:key_1'],
    ['evalsha', ['0123abcd', 2, '{kw}:k:1', '{kw}:h:2', 'arg-with-data', 'more'], 'evalsha {kw}:k:1 {kw}:h:2'],
    ['xread', ['BLOCK', 1000, 'COUNT', 10, 'STREAMS', '{kw}:outbox', '0-0'], 'xread {kw}:outbox'],
    ['mget', ['a', 'b'], 'mget a b'],
    ['auth', ['default', 'p4ssw0rd'], 'auth'],
    ['hello', [3, 'AUTH', 'default', 'p4ssw0rd'], 'hello'],
    ['ping', [], 'ping'],
    ['not-a-command', ['x'], 'not-a-command'],
  ])('%s %j -> %s', (cmd, args, expected) => {
    expect(redisStatement(cmd, args as string[])).toBe(expected);
  });

  it('bounds the keys shown and marks binary ones', () => {
    const keys = Array.from({ length: 12 }, (_, i) => `k${i}`);
    expect(redisStatement('del', keys)).toBe(`del ${keys.slice(0, 8).join(' ')} [4 more keys]`);
    expect(redisStatement('get', [Buffer.from([1, 2])])).toBe('get [binary key]');
  });
});

describe('log lines inside a span', () => {
  it('carry trace_id and span_id; lines outside carry none', async () => {
    const t = startTestTracing();
    try {
      const lines: Record<string, unknown>[] = [];
      const logger = createLogger(
        'info',
        new Writable({
          write(chunk: Buffer, _e, cb) {
            for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
            cb();
          },
        }),
      );
      const span = trace.getTracer('test').startSpan('op');
      context.with(trace.setSpan(ROOT_CONTEXT, span), () => logger.info('inside'));
      span.end();
      logger.info('outside');
      const sc = span.spanContext();
      expect(lines[0]).toMatchObject({ msg: 'inside', trace_id: sc.traceId, span_id: sc.spanId, trace_flags: '01' });
      expect(lines[1].msg).toBe('outside');
      expect(lines[1]).not.toHaveProperty('trace_id');
    } finally {
      await t.stop();
    }
  });
});
