import type { Attributes, AttributeValue, HrTime, Link, SpanContext, SpanKind, SpanStatus } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';

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

const NONE = -1;
const NO_PARENT = '0000000000000000';
const enum ParentKind {
  None = 0,
  Local = 1,
  Remote = 2,
}
const enum ValueType {
  String = 0,
  Number = 1,
  True = 2,
  False = 3,
  Other = 4,
}
/** Numbers before a span's attributes (see `add`). */
const FIXED = 18;

interface PlainLink {
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
    this.numbers = new Float64Array(Math.max(64, expectedSpans * 32));
  }

  get count(): number {
    return this.spans;
  }

  add(span: ReadableSpan): void {
    const attrs = span.attributes;
    const keys = Object.keys(attrs);
    this.reserve(FIXED + 1 + keys.length * 3);
    const x = this.numbers;
    let n = this.n;
    const sc = span.spanContext();
    const parent = span.parentSpanContext;
    this.ids.push(sc.traceId, sc.spanId, parent === undefined ? NO_PARENT : parent.spanId);
    x[n++] = this.resource(span.resource);
    x[n++] = this.scope(span.instrumentationScope);
    x[n++] = this.str(span.name);
    x[n++] = span.kind;
    x[n++] = sc.traceFlags;
    x[n++] = parent === undefined ? ParentKind.None : parent.isRemote ? ParentKind.Remote : ParentKind.Local;
    x[n++] = sc.traceState === undefined ? NONE : this.str(sc.traceState.serialize());
    x[n++] = span.startTime[0];
    x[n++] = span.startTime[1];
    x[n++] = span.endTime[0];
    x[n++] = span.endTime[1];
    x[n++] = span.status.code;
    x[n++] = span.status.message === undefined ? NONE : this.str(span.status.message);
    x[n++] = span.droppedAttributesCount;
    x[n++] = span.droppedEventsCount;
    x[n++] = span.droppedLinksCount;
    x[n++] = span.events.length === 0 ? NONE : this.value(span.events.map(plainEvent));
    x[n++] = span.links.length === 0 ? NONE : this.value(span.links.map(plainLink));
    x[n++] = keys.length;
    for (const k of keys) {
      x[n++] = this.str(k);
      const v = attrs[k];
      switch (typeof v) {
        case 'string':
          x[n++] = ValueType.String;
          x[n++] = this.str(v);
          break;
        case 'number':
          x[n++] = ValueType.Number;
          x[n++] = v;
          break;
        case 'boolean':
          x[n++] = v ? ValueType.True : ValueType.False;
          x[n++] = 0;
          break;
        default:
          x[n++] = ValueType.Other;
          x[n++] = this.value(v);
      }
    }
    this.n = n;
    this.spans++;
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

/** What the decoder needs to rebuild a resource and trace state (the worker passes the SDK's). */
export interface DecodeDeps {
  resource(attributes: Attributes, schemaUrl: string | undefined): Resource;
  traceState(serialized: string): NonNullable<SpanContext['traceState']>;
}

/** The spans of a batch, as ReadableSpans the OTLP serializer (and the redactor) can take. */
export function decodeSpanBatch(batch: EncodedSpanBatch, deps: DecodeDeps): ReadableSpan[] {
  const { numbers: x, ids, strings, values } = batch;
  const resources = batch.resources.map((r) => deps.resource(r.attributes, r.schemaUrl));
  const out: ReadableSpan[] = new Array(batch.count);
  let n = 0;
  for (let i = 0; i < batch.count; i++) {
    const idAt = i * 64;
    const traceId = ids.slice(idAt, idAt + 32);
    const resource = resources[x[n++]];
    const instrumentationScope = batch.scopes[x[n++]];
    const name = strings[x[n++]];
    const kind = x[n++] as SpanKind;
    const traceFlags = x[n++];
    const parentKind = x[n++] as ParentKind;
    const traceStateAt = x[n++];
    const traceState = traceStateAt === NONE ? undefined : deps.traceState(strings[traceStateAt]);
    const startTime: HrTime = [x[n++], x[n++]];
    const endTime: HrTime = [x[n++], x[n++]];
    const code = x[n++];
    const messageAt = x[n++];
    const status: SpanStatus = messageAt === NONE ? { code } : { code, message: strings[messageAt] };
    const droppedAttributesCount = x[n++];
    const droppedEventsCount = x[n++];
    const droppedLinksCount = x[n++];
    const eventsAt = x[n++];
    const linksAt = x[n++];
    const attributeCount = x[n++];
    const attributes: Record<string, AttributeValue> = {};
    for (let a = 0; a < attributeCount; a++) {
      const key = strings[x[n++]];
      const type = x[n++] as ValueType;
      const v = x[n++];
      attributes[key] =
        type === ValueType.String ? strings[v] : type === ValueType.Number ? v : type === ValueType.True ? true : type === ValueType.False ? false : (values[v] as AttributeValue);
    }
    const spanContext: SpanContext = { traceId, spanId: ids.slice(idAt + 32, idAt + 48), traceFlags, traceState };
    const parentSpanContext: SpanContext | undefined =
      parentKind === ParentKind.None ? undefined : { traceId, spanId: ids.slice(idAt + 48, idAt + 64), traceFlags, isRemote: parentKind === ParentKind.Remote };
    const links = linksAt === NONE ? [] : (values[linksAt] as PlainLink[]).map((l) => toLink(l, deps));
    out[i] = {
      name,
      kind,
      spanContext: () => spanContext,
      parentSpanContext,
      startTime,
      endTime,
      duration: hrTimeDiff(startTime, endTime),
      status,
      attributes,
      links,
      events: eventsAt === NONE ? [] : (values[eventsAt] as TimedEvent[]),
      ended: true,
      resource,
      instrumentationScope,
      droppedAttributesCount,
      droppedEventsCount,
      droppedLinksCount,
    };
  }
  return out;
}

function toLink(l: PlainLink, deps: DecodeDeps): Link {
  const { traceState, ...context } = l.context;
  return { ...l, context: traceState === undefined ? context : { ...context, traceState: deps.traceState(traceState) } };
}

function hrTimeDiff(start: HrTime, end: HrTime): HrTime {
  let seconds = end[0] - start[0];
  let nanos = end[1] - start[1];
  if (nanos < 0) {
    seconds -= 1;
    nanos += 1e9;
  }
  return [seconds, nanos];
}
