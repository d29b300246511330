import { hostname } from 'node:os';
import { trace } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { IORedisInstrumentation } from '@opentelemetry/instrumentation-ioredis';
import { defaultResource, detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  type Sampler,
} from '@opentelemetry/sdk-trace-base';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { LightSpanStarter } from './light-span';
import { PooledIdGenerator } from './pooled-id-generator';
import { SyncFirstContextManager } from './sync-first-context-manager';
import { redisStatement } from './redis-statement';
import { setTracer, TRACER_NAME } from './span-helpers';
import { currentTracing, setCurrentTracing, traceRedactionSecrets, type Tracing } from './tracing-lifecycle';
import { DEFAULT_SERVICE_NAME, tracingSettingsFromEnv, type SamplerName } from './tracing-settings';
import { WorkerSpanProcessor } from './worker-span-processor';

/*
 * Tracing set-up for `keyward serve`, configured by the standard OTEL_* variables only:
 *
 * - on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set (and neither
 *   OTEL_SDK_DISABLED=true nor OTEL_TRACES_EXPORTER=none); otherwise nothing is registered at all,
 *   no provider, no context manager, no instrumentation, so keyward runs as if OpenTelemetry were
 *   not there;
 * - OTLP over HTTP/protobuf (the exporter reads the endpoint, OTEL_EXPORTER_OTLP_*HEADERS, timeout
 *   and TLS variables itself), batched (OTEL_BSP_* variables), redacted, serialised and sent from
 *   a worker thread (worker-span-processor.ts) so that the request path only records spans;
 * - OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG; the default is parentbased_traceidratio with
 *   ratio 1.0: a caller's sampling decision (traceparent metadata) is honoured, new traces are
 *   sampled at the ratio;
 * - resource: service.name from OTEL_SERVICE_NAME (default `keyward`), OTEL_RESOURCE_ATTRIBUTES;
 * - ioredis client spans (only under a span, statements reduced to the command and key names by
 *   redis-statement.ts); gRPC server spans come from grpc-server-spans.ts, which servers.ts applies
 *   to keyward's services (no metadata recorded: `authorization` never reaches a span; health
 *   checks and reflection not traced).
 *
 * It must run before ioredis is loaded (it is patched when required): bin/keyward.js requires
 * preload.js first for `serve`, or use `node -r dist/observability/preload.js`.
 */

/** The sampler the settings name; ratios 0 and 1 use the constant samplers (same decisions, no work). */
export function samplerFor(name: SamplerName, ratio: number): Sampler {
  const byRatio = (): Sampler => (ratio >= 1 ? new AlwaysOnSampler() : ratio <= 0 ? new AlwaysOffSampler() : new TraceIdRatioBasedSampler(ratio));
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return byRatio();
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: byRatio() });
  }
}

/**
 * Sets up tracing from the environment, once per process; undefined when no endpoint is
 * configured. Call it before ioredis is first required.
 */
export function startTracing(env: NodeJS.ProcessEnv = process.env): Tracing | undefined {
  const running = currentTracing();
  if (running) return running;
  const settings = tracingSettingsFromEnv(env);
  if (!settings.enabled) return undefined;

  const resource = defaultResource()
    .merge(
      resourceFromAttributes({
        'service.name': DEFAULT_SERVICE_NAME,
        'service.version': packageVersion(),
        'host.name': hostname(),
        'process.pid': process.pid,
      }),
    )
    .merge(detectResources({ detectors: [envDetector] })); // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
  const processor = new WorkerSpanProcessor({ ...settings.batch, secrets: traceRedactionSecrets() });
  const idGenerator = new PooledIdGenerator();
  const sampler = samplerFor(settings.sampler, settings.ratio);
  const provider = new NodeTracerProvider({ resource, idGenerator, sampler, spanProcessors: [processor] });
  // a synchronous context stack with async propagation only around tracked async work; W3C trace-context + baggage propagators
  const contextManager = new SyncFirstContextManager();
  provider.register({ contextManager });

  registerInstrumentations({
    tracerProvider: provider,
    instrumentations: [new IORedisInstrumentation({ requireParentSpan: true, dbStatementSerializer: redisStatement })],
  });
  const { sampler: samplerName, ratio } = settings;
  // the provider's own tracer object (trace.getTracer returns it too): server spans share its scope
  const sdkTracer = provider.getTracer(TRACER_NAME, packageVersion()) as { instrumentationScope?: InstrumentationScope };
  setTracer(trace.getTracer(TRACER_NAME, packageVersion()), {
    asyncContext: contextManager,
    rootsUnsampled: samplerName.endsWith('always_off') || (samplerName.endsWith('traceidratio') && ratio === 0),
    serverSpans: new LightSpanStarter({
      sampler,
      idGenerator,
      sink: processor,
      resource,
      scope: sdkTracer.instrumentationScope ?? { name: TRACER_NAME, version: packageVersion() },
    }),
  });

  const tracing: Tracing = {
    settings,
    forceFlush: () => provider.forceFlush(),
    shutdown: async () => {
      setTracer(undefined);
      await provider.shutdown();
    },
    setRedactionSecrets: (secrets) => processor.setSecrets(secrets),
    exportStats: () => processor.stats(),
  };
  setCurrentTracing(tracing);
  return tracing;
}

function packageVersion(): string {
  try {
    // dist/observability/tracing.js -> package.json two levels up (src/ in tests)
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}
