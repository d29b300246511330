import { ROOT_CONTEXT, SpanKind, trace, type Attributes, type Span } from '@opentelemetry/api';
import type { WireEvent } from '../ports/event-transport';
import { activeTracer, contextFromTraceparent, endWithError, runInSpan, traceparentOf } from './span-helpers';

/*
 * Spans for events on NATS, with W3C trace context in the `traceparent` message header:
 *
 *   admin RPC (server span) ── traceparent captured into the event when it is made
 *     └─ publish keyward.events.<service>.<type> (PRODUCER, in whichever sidecar relays it)
 *          └─ process keyward.events.<service>.<type> (CONSUMER, in every sidecar that hears it)
 *
 * The relay publishes long after the RPC returned, from its own loop, so the publish span's parent
 * comes from the event's traceparent, not from the active context; the header sent is the publish
 * span's own, so consumers hang below it. Attributes follow the messaging semantic conventions and
 * carry ids only (event id, key id), never a payload.
 */

const SYSTEM = 'nats';

function attributes(subject: string, event: WireEvent, operation: 'send' | 'process', group?: string): Attributes {
  return {
    'messaging.system': SYSTEM,
    'messaging.operation.type': operation,
    'messaging.operation.name': operation === 'send' ? 'publish' : 'process',
    'messaging.destination.name': subject,
    'messaging.message.id': event.id,
    ...(group !== undefined && { 'messaging.consumer.group.name': group }),
    'keyward.event.type': event.type,
    ...(event.keyId && { 'keyward.key.id': event.keyId }),
  };
}

export interface PublishSpan {
  /** The traceparent to send in the message header (the publish span's, or the event's own when tracing is off). */
  readonly traceparent?: string;
  /** Ends the span, failed when `error` is given. */
  end(error?: unknown): void;
}

const NO_SPAN = (traceparent: string | undefined): PublishSpan => ({ traceparent, end: () => undefined });

/** Starts the PRODUCER span of one publish, as a child of the operation that made the event. */
export function startPublishSpan(subject: string, event: WireEvent): PublishSpan {
  const tracer = activeTracer();
  if (tracer === undefined) return NO_SPAN(event.traceparent);
  const parent = contextFromTraceparent(event.traceparent) ?? ROOT_CONTEXT;
  const span = tracer.startSpan(`publish ${subject}`, { kind: SpanKind.PRODUCER, attributes: attributes(subject, event, 'send') }, parent);
  return {
    traceparent: traceparentOf(span) ?? event.traceparent,
    end(error?: unknown) {
      if (error === undefined) span.end();
      else endWithError(span, error);
    },
  };
}

/**
 * Runs a consumer's handler for one event in a CONSUMER span whose parent is the span named by the
 * message's traceparent (or a new trace when it has none, subject to sampling). Synchronous
 * handlers stay synchronous; a promise ends the span when it settles.
 */
export function withConsumeSpan<T>(subject: string, event: WireEvent, group: string | undefined, fn: () => T): T {
  const tracer = activeTracer();
  if (tracer === undefined) return fn();
  const parent = contextFromTraceparent(event.traceparent) ?? ROOT_CONTEXT;
  const span: Span = tracer.startSpan(
    `process ${subject}`,
    { kind: SpanKind.CONSUMER, attributes: attributes(subject, event, 'process', group) },
    parent,
  );
  // an unsampled consume needs no context (and tracking it would switch async hooks on)
  if (!span.isRecording()) return fn();
  return runInSpan(trace.setSpan(parent, span), span, fn);
}
