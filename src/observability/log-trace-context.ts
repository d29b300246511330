import { context, isSpanContextValid, trace, TraceFlags } from '@opentelemetry/api';

/**
 * pino `mixin`: the ids of the span active when a line is logged, as `trace_id`, `span_id` and
 * `trace_flags` (the OpenTelemetry names for JSON logs), so a log line leads to its trace. With
 * tracing off no span is ever active and this is one context lookup per line.
 */
export function traceContextMixin(): Record<string, string> {
  const span = trace.getSpan(context.active());
  if (span === undefined) return {};
  const sc = span.spanContext();
  if (!isSpanContextValid(sc)) return {};
  return { trace_id: sc.traceId, span_id: sc.spanId, trace_flags: sc.traceFlags & TraceFlags.SAMPLED ? '01' : '00' };
}
