import type { Attributes, Link, SpanContext, SpanKind } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';
import type { LightSpan } from './light-span';

/*
 * Finished spans as a compact, transferable batch: what the main thread hands the export worker.
 *
 * Why not post the spans as objects: structured cloning a span costs about as much as serialising
 * it to OTLP protobuf, the very work the worker is there to take off the request path. Here each
 * span becomes a few dozen numbers in one Float64Array (transferred, not copied), its ids one slice
 * of a single string, and every other string an index into a per-batch table, so the many spans
 * that share a name, attribute keys and values (`keyward.v1.KeyService/ValidateKey`, `hit`) carry
 * each string once. The rare parts (events, links, array attribute values) are posted as they are.
 *
 * Encoding a span when it ends, rather than holding it until the batch is sent, also lets the span
 * object die young: the garbage collector never has to copy or promote it.
 */

/** What crosses the thread boundary (structured-clone safe; `numbers` is transferred). */
export interface EncodedSpanBatch {
  readonly count: number;
  readonly numbers: Float64Array;
  /** Per span: 32 hex trace id, 16 span id, 16 parent span id (zeros: none). */
  readonly ids: string;
  readonly strings: string[];
  /** Values that are not a string, number or boolean: arrays, events, links. */
  readonly values: unknown[];
  readonly resources: { attributes: Attributes; schemaUrl?: string }[];
  readonly scopes: InstrumentationScope[];
}

export const BATCH_NONE = -1;
export const PARENT_NONE = 0;
export const PARENT_LOCAL = 1;
export const PARENT_REMOTE = 2;
export const VALUE_STRING = 0;
export const VALUE_NUMBER = 1;
export const VALUE_TRUE = 2;
export const VALUE_FALSE = 3;
export const VALUE_OTHER = 4;

/**
 * The layout of a span in `numbers`, the one place it is defined: each field's offset from the
 * span's first number, written by SpanBatchEncoder and read by otlp-trace-request.ts. Indexes into
 * `strings` or `values` are BATCH_NONE when absent. The attribute count comes last, followed by
 * each attribute as laid out in ATTRIBUTE.
 */
export const SPAN = {
  resource: 0,
  scope: 1,
  name: 2,
  kind: 3,
  traceFlags: 4,
  /** PARENT_NONE, PARENT_LOCAL or PARENT_REMOTE. */
  parent: 5,
  traceState: 6,
  startSeconds: 7,
  startNanos: 8,
  endSeconds: 9,
  endNanos: 10,
  statusCode: 11,
  statusMessage: 12,
  droppedAttributes: 13,
  droppedEvents: 14,
  droppedLinks: 15,
  /** Index into `values` of the span's events (TimedEvent[]). */
  events: 16,
  /** Index into `values` of the span's links (PlainLink[]). */
  links: 17,
  attributeCount: 18,
} as const;

/** An attribute after the span's count: key (a string index), value type (VALUE_*), value. */
export const ATTRIBUTE = {
  key: 0,
  type: 1,
  /** The number itself, a string index (VALUE_STRING), 0 (booleans) or a `values` index (VALUE_OTHER). */
  value: 2,
} as const;
export const ATTRIBUTE_NUMBERS = 3;
/** Offset of a span's first attribute. */
export const FIRST_ATTRIBUTE = SPAN.attributeCount + 1;

/** How many numbers a span with `attributes` attributes takes. */
export function spanNumbers(attributes: number): number {
  return FIRST_ATTRIBUTE + ATTRIBUTE_NUMBERS * attributes;
}

const NO_PARENT = '0000000000000000';

export interface PlainLink {
  context: { traceId: string; spanId: string; traceFlags: number; isRemote?: boolean; traceState?: string };
  attributes?: Attributes;
  droppedAttributesCount?: number;
}

/** Builds one batch; `add` each finished span, then `finish`. */
export class SpanBatchEncoder {
  private numbers: Float64Array;
  private n = 0;
  private spans = 0;
  private ids: string[] = [];
  private readonly strings: string[] = [];
  private readonly stringIndex = new Map<string, number>();
  private readonly values: unknown[] = [];
  private readonly resources: { attributes: Attributes; schemaUrl?: string }[] = [];
  private readonly resourceIndex = new Map<Resource, number>();
  private readonly scopes: InstrumentationScope[] = [];
  private readonly scopeIndex = new Map<InstrumentationScope, number>();

  constructor(expectedSpans = 64) {
    // room for spans of up to 8 attributes (a traced ValidateKey's server span has 6), so a full
    // batch of them never grows the array (a copy of all it holds, and twice the memory meanwhile)
    this.numbers = new Float64Array(Math.max(64, expectedSpans * spanNumbers(8)));
  }

  get count(): number {
    return this.spans;
  }

  add(span: ReadableSpan): void {
    const attrs = span.attributes;
    const keys = Object.keys(attrs);
    this.reserve(spanNumbers(keys.length));
    const x = this.numbers;
    const n = this.n;
    this.head(n, span.spanContext(), span.parentSpanContext, span.resource, span.instrumentationScope, span.name, span.kind);
    x[n + SPAN.startSeconds] = span.startTime[0];
    x[n + SPAN.startNanos] = span.startTime[1];
    x[n + SPAN.endSeconds] = span.endTime[0];
    x[n + SPAN.endNanos] = span.endTime[1];
    x[n + SPAN.statusCode] = span.status.code;
    x[n + SPAN.statusMessage] = span.status.message === undefined ? BATCH_NONE : this.str(span.status.message);
    x[n + SPAN.droppedAttributes] = span.droppedAttributesCount;
    x[n + SPAN.droppedEvents] = span.droppedEventsCount;
    x[n + SPAN.droppedLinks] = span.droppedLinksCount;
    x[n + SPAN.events] = span.events.length === 0 ? BATCH_NONE : this.value(span.events.map(plainEvent));
    x[n + SPAN.links] = span.links.length === 0 ? BATCH_NONE : this.value(span.links.map(plainLink));
    x[n + SPAN.attributeCount] = keys.length;
    let a = n + FIRST_ATTRIBUTE;
    for (const k of keys) a = this.attribute(a, k, attrs[k]);
    this.n = a;
    this.spans++;
  }

  /** The ids and the fields both kinds of span share, for the span starting at number `n`. */
  private head(n: number, sc: SpanContext, parent: SpanContext | undefined, resource: Resource, scope: InstrumentationScope, name: string, kind: SpanKind): void {
    const x = this.numbers;
    this.ids.push(sc.traceId, sc.spanId, parent === undefined ? NO_PARENT : parent.spanId);
    x[n + SPAN.resource] = this.resource(resource);
    x[n + SPAN.scope] = this.scope(scope);
    x[n + SPAN.name] = this.str(name);
    x[n + SPAN.kind] = kind;
    x[n + SPAN.traceFlags] = sc.traceFlags;
    x[n + SPAN.parent] = parent === undefined ? PARENT_NONE : parent.isRemote ? PARENT_REMOTE : PARENT_LOCAL;
    x[n + SPAN.traceState] = sc.traceState === undefined ? BATCH_NONE : this.str(sc.traceState.serialize());
  }

  /** A LightSpan (keyward's server spans), laid out as `add` lays out an SDK span. */
  addLight(span: LightSpan): void {
    const keys = span.keys;
    const values = span.values;
    this.reserve(spanNumbers(keys.length));
    const x = this.numbers;
    const n = this.n;
    this.head(n, span.context, span.parent, span.resource, span.scope, span.name, span.kind);
    hrTimeOf(x, n + SPAN.startSeconds, n + SPAN.startNanos, span.startMillis);
    hrTimeOf(x, n + SPAN.endSeconds, n + SPAN.endNanos, span.endMillis);
    x[n + SPAN.statusCode] = span.status.code;
    x[n + SPAN.statusMessage] = span.status.message === undefined ? BATCH_NONE : this.str(span.status.message);
    x[n + SPAN.droppedAttributes] = span.droppedAttributes;
    x[n + SPAN.droppedEvents] = span.droppedEvents;
    x[n + SPAN.droppedLinks] = span.droppedLinks;
    x[n + SPAN.events] = span.events === undefined ? BATCH_NONE : this.value(span.events.map(plainEvent));
    x[n + SPAN.links] = span.links === undefined ? BATCH_NONE : this.value(span.links.map(plainLink));
    x[n + SPAN.attributeCount] = keys.length;
    let a = n + FIRST_ATTRIBUTE;
    for (let i = 0; i < keys.length; i++) a = this.attribute(a, keys[i], values[i]);
    this.n = a;
    this.spans++;
  }

  /** Writes an attribute at `at`; returns where the next one goes. */
  private attribute(at: number, k: string, v: unknown): number {
    const x = this.numbers;
    x[at + ATTRIBUTE.key] = this.str(k);
    let type: number;
    let value: number;
    switch (typeof v) {
      case 'string':
        type = VALUE_STRING;
        value = this.str(v);
        break;
      case 'number':
        type = VALUE_NUMBER;
        value = v;
        break;
      case 'boolean':
        type = v ? VALUE_TRUE : VALUE_FALSE;
        value = 0;
        break;
      default:
        type = VALUE_OTHER;
        value = this.value(v);
    }
    x[at + ATTRIBUTE.type] = type;
    x[at + ATTRIBUTE.value] = value;
    return at + ATTRIBUTE_NUMBERS;
  }

  /** The batch; the encoder must not be used afterwards. */
  finish(): EncodedSpanBatch {
    return {
      count: this.spans,
      numbers: this.numbers.subarray(0, this.n),
      ids: this.ids.join(''),
      strings: this.strings,
      values: this.values,
      resources: this.resources,
      scopes: this.scopes,
    };
  }

  private reserve(more: number): void {
    if (this.n + more <= this.numbers.length) return;
    const bigger = new Float64Array(Math.max(this.numbers.length * 2, this.n + more));
    bigger.set(this.numbers.subarray(0, this.n));
    this.numbers = bigger;
  }

  private str(s: string): number {
    let i = this.stringIndex.get(s);
    if (i === undefined) {
      i = this.strings.push(s) - 1;
      this.stringIndex.set(s, i);
    }
    return i;
  }

  private value(v: unknown): number {
    return this.values.push(v) - 1;
  }

  private resource(r: Resource): number {
    let i = this.resourceIndex.get(r);
    if (i === undefined) {
      i = this.resources.push({ attributes: { ...r.attributes }, schemaUrl: r.schemaUrl }) - 1;
      this.resourceIndex.set(r, i);
    }
    return i;
  }

  private scope(s: InstrumentationScope): number {
    let i = this.scopeIndex.get(s);
    if (i === undefined) {
      i = this.scopes.push({ name: s.name, version: s.version, schemaUrl: s.schemaUrl }) - 1;
      this.scopeIndex.set(s, i);
    }
    return i;
  }
}

/** [seconds, nanos] of epoch milliseconds into x (the SDK's millisToHrTime, without the array). */
function hrTimeOf(x: Float64Array, secondsAt: number, nanosAt: number, ms: number): void {
  let seconds = Math.trunc(ms / 1000);
  let nanos = Math.round((ms - seconds * 1000) * 1e6);
  if (nanos >= 1e9) {
    seconds += 1;
    nanos -= 1e9;
  }
  x[secondsAt] = seconds;
  x[nanosAt] = nanos;
}

function plainEvent(e: TimedEvent): TimedEvent {
  return { name: e.name, time: e.time, attributes: e.attributes, droppedAttributesCount: e.droppedAttributesCount };
}

function plainLink(l: Link): PlainLink {
  const c = l.context;
  return {
    context: { traceId: c.traceId, spanId: c.spanId, traceFlags: c.traceFlags, isRemote: c.isRemote, traceState: c.traceState?.serialize() },
    attributes: l.attributes,
    droppedAttributesCount: l.droppedAttributesCount,
  };
}
