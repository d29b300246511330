import { context, propagation, trace } from '@opentelemetry/api';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  InMemorySpanExporter,
  NodeTracerProvider,
  ParentBasedSampler,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-node';
import { setTracer, TRACER_NAME } from '../../../src/observability/span-helpers';
import { SyncFirstContextManager } from '../../../src/observability/sync-first-context-manager';

/**
 * An in-memory tracer provider registered as the global one (jest gives every test file its own
 * globals), switched on for keyward's span helpers. `sampled: false` makes root spans unsampled;
 * `syncFirst` registers keyward's own context manager (as `keyward serve` does) instead of the SDK's.
 */
export function startTestTracing(opts: { sampled?: boolean; syncFirst?: boolean } = {}): {
  spans: () => ReadableSpan[];
  reset: () => void;
  stop: () => Promise<void>;
} {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({
    sampler: new ParentBasedSampler({ root: opts.sampled === false ? new AlwaysOffSampler() : new AlwaysOnSampler() }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const contextManager = opts.syncFirst ? new SyncFirstContextManager() : undefined;
  provider.register({ contextManager });
  setTracer(provider.getTracer(TRACER_NAME), { asyncContext: contextManager });
  return {
    spans: () => exporter.getFinishedSpans(),
    reset: () => exporter.reset(),
    stop: async () => {
      setTracer(undefined);
      await provider.shutdown();
      trace.disable();
      context.disable();
      propagation.disable();
    },
  };
}

export const hexOf = (s: ReadableSpan) => s.spanContext().spanId;
export const parentOf = (s: ReadableSpan) => s.parentSpanContext?.spanId;
