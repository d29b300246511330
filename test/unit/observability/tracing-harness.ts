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

/**
 * An in-memory tracer provider registered as the global one (jest gives every test file its own
 * globals), switched on for keyward's span helpers. `sampled: false` makes root spans unsampled.
 */
export function startTestTracing(opts: { sampled?: boolean } = {}): {
  spans: () => ReadableSpan[];
  reset: () => void;
  stop: () => Promise<void>;
} {
  const exporter = new InMemorySpanExporter();
  const provider = new NodeTracerProvider({
    sampler: new ParentBasedSampler({ root: opts.sampled === false ? new AlwaysOffSampler() : new AlwaysOnSampler() }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  provider.register();
  setTracer(provider.getTracer(TRACER_NAME));
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
