import {
  SamplingDecision,
  SpanKind,
  trace,
  TraceFlags,
  type AttributeValue,
  type Attributes,
  type Context,
  type Exception,
  type Link,
  type Span,
  type SpanContext,
  type SpanStatus,
  type TimeInput,
} from '@opentelemetry/api';
import { isAttributeValue, isTimeInput, sanitizeAttributes, type InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { IdGenerator, Sampler, TimedEvent } from '@opentelemetry/sdk-trace-base';

/*
 * keyward's own gRPC SERVER spans, lighter than the SDK's: one per call on the hot path, so what
 * the SDK span carries for generality showed in the profile (an attributes object validated key by
 * key, events and links arrays, two [seconds, nanos] arrays, a duration, limits, metrics hooks).
 * A LightSpan keeps its attributes in two short arrays, its times as two numbers, and on `end`
 * hands itself to the span sink (WorkerSpanProcessor), which writes it into the export batch at
 * once, so the object dies young.
 *
 * Everything else is the SDK's: the sampler (parent-based ratio, from the standard variables)
 * decides, ids come from the provider's id generator, the caller's trace context is the parent,
 * and the span is an API Span in the context, so Redis, NATS and validation-step spans (made by the
 * SDK's tracer) hang below it. Events, links and exceptions are rare and kept as the SDK keeps them.
 */

/** Where ended light spans go (WorkerSpanProcessor). */
export interface LightSpanSink {
  onEndLight(span: LightSpan): void;
}

export interface LightSpanStarterOptions {
  readonly sampler: Sampler;
  readonly idGenerator: IdGenerator;
  readonly sink: LightSpanSink;
  /** The provider's resource and the keyward tracer's scope: spans of one batch share them (by identity). */
  readonly resource: Resource;
  readonly scope: InstrumentationScope;
}

/** The SDK's default attribute, event and link count limits. */
const MAX_ATTRIBUTES = 128;
const MAX_EVENTS = 128;
const MAX_LINKS = 128;
const NO_LINKS: Link[] = [];
/** A span's status until setStatus (shared: statuses are replaced, never changed). */
const UNSET: SpanStatus = Object.freeze({ code: 0 });

function nowEpochMillis(): number {
  return performance.timeOrigin + performance.now();
}

function epochMillis(t: TimeInput | undefined): number {
  if (t === undefined) return nowEpochMillis();
  if (typeof t === 'number') return t < performance.now() ? performance.timeOrigin + t : t; // performance.now() or epoch millis, as the SDK reads them
  if (t instanceof Date) return t.getTime();
  return t[0] * 1e3 + t[1] / 1e6;
}

export class LightSpan implements Span {
  readonly keys: string[] = [];
  readonly values: AttributeValue[] = [];
  droppedAttributes = 0;
  events: TimedEvent[] | undefined;
  links: Link[] | undefined;
  /** Events and links refused past the caps (the first 128 stay, where the SDK keeps the last 128): OTLP's dropped counts. */
  droppedEvents = 0;
  droppedLinks = 0;
  status: SpanStatus = UNSET;
  endMillis = 0;
  private ended = false;

  constructor(
    private readonly sink: LightSpanSink,
    readonly resource: Resource,
    readonly scope: InstrumentationScope,
    readonly context: SpanContext,
    readonly parent: SpanContext | undefined,
    public name: string,
    readonly kind: SpanKind,
    readonly startMillis: number,
  ) {}

  spanContext(): SpanContext {
    return this.context;
  }

  setAttribute(key: string, value: AttributeValue): this {
    if (this.ended || value == null || key.length === 0 || !isAttributeValue(value)) return this;
    const at = this.keys.indexOf(key);
    if (at >= 0) this.values[at] = Array.isArray(value) ? value.slice() : value;
    else if (this.keys.length >= MAX_ATTRIBUTES) this.droppedAttributes++;
    else {
      this.keys.push(key);
      this.values.push(Array.isArray(value) ? value.slice() : value);
    }
    return this;
  }

  setAttributes(attributes: Attributes): this {
    for (const k of Object.keys(attributes)) this.setAttribute(k, attributes[k] as AttributeValue);
    return this;
  }

  addEvent(name: string, attributesOrTime?: Attributes | TimeInput, time?: TimeInput): this {
    if (this.ended) return this;
    if ((this.events?.length ?? 0) >= MAX_EVENTS) {
      this.droppedEvents++;
      return this;
    }
    const isTime = isTimeInput(attributesOrTime);
    const attributes = isTime ? {} : sanitizeAttributes(attributesOrTime);
    const at = epochMillis(isTime ? (attributesOrTime as TimeInput) : time);
    (this.events ??= []).push({ name, attributes, time: toHrTime(at), droppedAttributesCount: 0 });
    return this;
  }

  addLink(link: Link): this {
    if (this.ended) return this;
    if ((this.links?.length ?? 0) < MAX_LINKS) (this.links ??= []).push(link);
    else this.droppedLinks++;
    return this;
  }

  addLinks(links: Link[]): this {
    for (const l of links) this.addLink(l);
    return this;
  }

  setStatus(status: SpanStatus): this {
    if (this.ended || this.status.code === 1 /* OK is final */) return this;
    if (status.code === 0) return this;
    this.status = status.code === 2 && typeof status.message === 'string' ? { code: 2, message: status.message } : { code: status.code };
    return this;
  }

  updateName(name: string): this {
    if (!this.ended) this.name = name;
    return this;
  }

  end(endTime?: TimeInput): void {
    if (this.ended) return;
    this.ended = true;
    this.endMillis = Math.max(this.startMillis, epochMillis(endTime));
    this.sink.onEndLight(this);
  }

  isRecording(): boolean {
    return !this.ended;
  }

  recordException(exception: Exception, time?: TimeInput): void {
    const attributes: Attributes = {};
    if (typeof exception === 'string') attributes['exception.message'] = exception;
    else if (exception) {
      if (exception.code !== undefined) attributes['exception.type'] = String(exception.code);
      else if (exception.name) attributes['exception.type'] = exception.name;
      if (exception.message) attributes['exception.message'] = exception.message;
      if (exception.stack) attributes['exception.stacktrace'] = exception.stack;
    }
    this.addEvent('exception', attributes, time);
  }

  linksOrNone(): Link[] {
    return this.links ?? NO_LINKS;
  }
}

/** [seconds, nanos] of epoch milliseconds (as the SDK's millisToHrTime). */
export function toHrTime(ms: number): [number, number] {
  let seconds = Math.trunc(ms / 1000);
  let nanos = Math.round((ms - seconds * 1000) * 1e6);
  if (nanos >= 1e9) {
    seconds += 1;
    nanos -= 1e9;
  }
  return [seconds, nanos];
}

/** Starts SERVER spans as the SDK's tracer would (same sampling and ids), as LightSpans. */
export class LightSpanStarter {
  constructor(private readonly opts: LightSpanStarterOptions) {}

  /** A recording LightSpan, or a non-recording span carrying the context to pass on. */
  start(name: string, attributes: Attributes, parentContext: Context): Span {
    const { sampler, idGenerator } = this.opts;
    const parentSc = trace.getSpanContext(parentContext);
    const validParent = parentSc !== undefined && trace.isSpanContextValid(parentSc) ? parentSc : undefined;
    const spanId = idGenerator.generateSpanId();
    const traceId = validParent === undefined ? idGenerator.generateTraceId() : validParent.traceId;
    const result = sampler.shouldSample(parentContext, traceId, name, SpanKind.SERVER, attributes, NO_LINKS);
    const traceState = result.traceState ?? validParent?.traceState;
    const traceFlags = result.decision === SamplingDecision.RECORD_AND_SAMPLED ? TraceFlags.SAMPLED : TraceFlags.NONE;
    const sc: SpanContext = traceState === undefined ? { traceId, spanId, traceFlags } : { traceId, spanId, traceFlags, traceState };
    if (result.decision === SamplingDecision.NOT_RECORD) return trace.wrapSpanContext(sc);
    const span = new LightSpan(this.opts.sink, this.opts.resource, this.opts.scope, sc, validParent, name, SpanKind.SERVER, nowEpochMillis());
    for (const k in attributes) span.setAttribute(k, attributes[k] as AttributeValue);
    if (result.attributes !== undefined) span.setAttributes(result.attributes);
    return span;
  }
}
