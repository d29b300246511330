import type { Attributes } from '@opentelemetry/api';
import type { TimedEvent } from '@opentelemetry/sdk-trace-base';
import {
  ATTRIBUTE,
  ATTRIBUTE_NUMBERS,
  BATCH_NONE,
  FIRST_ATTRIBUTE,
  PARENT_NONE,
  PARENT_REMOTE,
  SPAN,
  spanNumbers,
  VALUE_FALSE,
  VALUE_NUMBER,
  VALUE_STRING,
  VALUE_TRUE,
  type EncodedSpanBatch,
  type PlainLink,
} from './span-batch-codec';

/*
 * The OTLP ExportTraceServiceRequest protobuf, written straight from an encoded span batch
 * (span-batch-codec.ts) in the export worker.
 *
 * The SDK's serialiser needs ReadableSpans: rebuilding them from the batch, then converting each
 * hex id, UTF-8-encoding each string and walking each attribute per span cost about 4 µs per span
 * of worker CPU, which on a busy machine comes out of the server's share. Here the batch's string
 * table is UTF-8-encoded once, each distinct string attribute (`rpc.system` = `grpc`, ...) becomes
 * its KeyValue bytes once per batch, and all ids are hex-decoded in one call.
 *
 * The bytes are those the SDK's ProtobufTraceSerializer makes of the original spans (its field
 * order, its choice of fields left out, spans grouped by resource then instrumentation scope in
 * order of first appearance); the codec test compares them byte for byte.
 */

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;
const FLAGS_HAS_IS_REMOTE = 0x100;
const FLAGS_IS_REMOTE = 0x200;
const MIN_INT64 = -(2 ** 63);
const MAX_INT64 = 2 ** 63;

/** A growable protobuf writer; nested messages reserve one length byte and move their content when it needs more. */
class Writer {
  buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  finish(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }

  ensure(more: number): void {
    if (this.pos + more <= this.buf.length) return;
    const bigger = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + more));
    this.buf.copy(bigger, 0, 0, this.pos);
    this.buf = bigger;
  }

  tag(field: number, wire: number): void {
    const t = (field << 3) | wire;
    if (t >= 0x80) return this.uint32(t); // field 16 and up: two bytes
    this.ensure(1);
    this.buf[this.pos++] = t;
  }

  uint32(v: number): void {
    this.ensure(5);
    v >>>= 0;
    while (v > 0x7f) {
      this.buf[this.pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[this.pos++] = v;
  }

  /** int64 varint of an integer-valued number (negative: ten bytes of two's complement). */
  int64(value: number): void {
    if (value >= 0 && value <= 0xffffffff) return this.uint32(value);
    this.ensure(10);
    const abs = Math.abs(value);
    let low = abs >>> 0;
    let high = (abs / 0x100000000) >>> 0;
    if (value < 0) {
      low = (~low + 1) >>> 0;
      high = ~high >>> 0;
      if (low === 0) high = (high + 1) >>> 0;
    }
    while (high > 0 || low > 0x7f) {
      this.buf[this.pos++] = (low & 0x7f) | 0x80;
      low = ((low >>> 7) | (high << 25)) >>> 0;
      high >>>= 7;
    }
    this.buf[this.pos++] = low;
  }

  fixed32(v: number): void {
    this.ensure(4);
    this.le32(v >>> 0);
  }

  double(v: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(v, this.pos);
    this.pos += 8;
  }

  /** Unix nanoseconds of [seconds, nanos] as fixed64, exact beyond 2^53 (the SDK's arithmetic). */
  hrTime(seconds: number, nanos: number): void {
    this.ensure(8);
    const lowSecondsNanos = (seconds & 0xffff) * 1e9;
    const highSecondsNanos = ((seconds / 0x10000) >>> 0) * 1e9;
    const sumLow = (lowSecondsNanos >>> 0) + ((((highSecondsNanos & 0xffff) * 0x10000) >>> 0) + nanos);
    const low = sumLow >>> 0;
    const high = (Math.floor(lowSecondsNanos / 0x100000000) + ((highSecondsNanos / 0x10000) >>> 0) + Math.floor(sumLow / 0x100000000)) >>> 0;
    this.le32(low);
    this.le32(high);
  }

  private le32(v: number): void {
    const buf = this.buf;
    buf[this.pos++] = v & 0xff;
    buf[this.pos++] = (v >>> 8) & 0xff;
    buf[this.pos++] = (v >>> 16) & 0xff;
    buf[this.pos++] = v >>> 24;
  }

  bytes(b: Uint8Array): void {
    this.uint32(b.length);
    this.raw(b);
  }

  raw(b: Uint8Array): void {
    const len = b.length;
    this.ensure(len);
    if (len > 64) {
      this.buf.set(b, this.pos);
      this.pos += len;
      return;
    }
    // a byte loop beats a native copy at the size of most strings and attributes
    const buf = this.buf;
    let p = this.pos;
    for (let i = 0; i < len; i++) buf[p++] = b[i];
    this.pos = p;
  }

  /** `n` bytes of `from` at `at` as a bytes field's value (an id). */
  idBytes(from: Uint8Array, at: number, n: number): void {
    this.ensure(n + 1);
    const buf = this.buf;
    let p = this.pos;
    buf[p++] = n;
    for (let i = at, last = at + n; i < last; i++) buf[p++] = from[i];
    this.pos = p;
  }

  string(s: string): void {
    const len = Buffer.byteLength(s);
    this.uint32(len);
    this.ensure(len);
    this.pos += this.buf.write(s, this.pos, len, 'utf8');
  }

  /** Starts a length-delimited message: returns where its length goes. */
  begin(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** Starts a message whose length likely takes two bytes (a span): returns where its length goes. */
  begin2(): number {
    this.ensure(2);
    const at = this.pos;
    this.pos += 2;
    return at;
  }

  /** Ends the message begun at `at`, writing its length there (moving the content if it needs more than a byte). */
  end(at: number): void {
    this.endReserved(at, 1);
  }

  /** Ends a message begun with `reserved` length bytes, moving its content if its length takes another number of bytes. */
  endReserved(at: number, reserved: number): void {
    const len = this.pos - at - reserved;
    if (len < 0x80 && reserved === 1) {
      this.buf[at] = len;
      return;
    }
    const size = len < 0x80 ? 1 : len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5;
    if (size !== reserved) {
      this.ensure(size - reserved);
      this.buf.copyWithin(at + size, at + reserved, this.pos);
      this.pos += size - reserved;
    }
    let v = len;
    let p = at;
    while (v > 0x7f) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
  }
}

/** The AnyValue fields of a value, as the SDK writes them (nothing for an unsupported type). */
function writeAnyValue(w: Writer, value: unknown): void {
  switch (typeof value) {
    case 'string':
      w.tag(1, WIRE_LEN);
      w.string(value);
      return;
    case 'boolean':
      w.tag(2, WIRE_VARINT);
      w.uint32(value ? 1 : 0);
      return;
    case 'number':
      writeNumber(w, value);
      return;
  }
  if (value instanceof Uint8Array) {
    w.tag(7, WIRE_LEN);
    w.bytes(value);
  } else if (Array.isArray(value)) {
    w.tag(5, WIRE_LEN);
    const array = w.begin();
    for (const item of value) {
      w.tag(1, WIRE_LEN);
      const at = w.begin();
      writeAnyValue(w, item);
      w.end(at);
    }
    w.end(array);
  } else if (typeof value === 'object' && value !== null) {
    w.tag(6, WIRE_LEN);
    const list = w.begin();
    for (const [k, v] of Object.entries(value)) writeKeyValue(w, 1, k, v);
    w.end(list);
  }
}

function writeNumber(w: Writer, v: number): void {
  if (Number.isInteger(v) && v >= MIN_INT64 && v < MAX_INT64) {
    w.tag(3, WIRE_VARINT);
    w.int64(v);
  } else {
    w.tag(4, WIRE_FIXED64);
    w.double(v);
  }
}

/** One KeyValue as field `field` of the enclosing message. */
function writeKeyValue(w: Writer, field: number, key: string, value: unknown): void {
  w.tag(field, WIRE_LEN);
  const kv = w.begin();
  w.tag(1, WIRE_LEN);
  w.string(key);
  w.tag(2, WIRE_LEN);
  const v = w.begin();
  writeAnyValue(w, value);
  w.end(v);
  w.end(kv);
}

function writeAttributes(w: Writer, field: number, attributes: Attributes | undefined): void {
  if (attributes === undefined) return;
  for (const key of Object.keys(attributes)) writeKeyValue(w, field, key, attributes[key]);
}

function flags(traceFlags: number, isRemote: boolean | undefined): number {
  return (traceFlags & 0xff) | FLAGS_HAS_IS_REMOTE | (isRemote ? FLAGS_IS_REMOTE : 0);
}

function writeEvent(w: Writer, e: TimedEvent): void {
  w.tag(11, WIRE_LEN);
  const at = w.begin();
  w.tag(1, WIRE_FIXED64);
  w.hrTime(e.time[0], e.time[1]);
  w.tag(2, WIRE_LEN);
  w.string(e.name);
  writeAttributes(w, 3, e.attributes);
  w.tag(4, WIRE_VARINT);
  w.uint32(e.droppedAttributesCount || 0);
  w.end(at);
}

function writeLink(w: Writer, l: PlainLink): void {
  const c = l.context;
  w.tag(13, WIRE_LEN);
  const at = w.begin();
  w.tag(1, WIRE_LEN);
  w.bytes(Buffer.from(c.traceId, 'hex'));
  w.tag(2, WIRE_LEN);
  w.bytes(Buffer.from(c.spanId, 'hex'));
  if (c.traceState) {
    w.tag(3, WIRE_LEN);
    w.string(c.traceState);
  }
  writeAttributes(w, 4, l.attributes);
  w.tag(5, WIRE_VARINT);
  w.uint32(l.droppedAttributesCount || 0);
  w.tag(6, WIRE_FIXED32);
  w.fixed32(flags(c.traceFlags, c.isRemote));
  w.end(at);
}

/** Per span: trace id 16 bytes, span id 8, parent span id 8 (the batch's `ids`, decoded once). */
const ID_BYTES = 32;

function idBytes(batch: EncodedSpanBatch): Buffer {
  const all = Buffer.from(batch.ids, 'hex');
  if (all.length === batch.count * ID_BYTES) return all;
  // an id that is not hex (a library's odd link or parent): decode each on its own, as the SDK would
  const out = Buffer.alloc(batch.count * ID_BYTES);
  for (let i = 0; i < batch.count * 4; i++) Buffer.from(batch.ids.slice(i * 16, i * 16 + 16), 'hex').copy(out, i * 8);
  return out;
}

/** The request's bytes (the batch's strings and values as they are: redact first). */
export function encodeTraceRequest(batch: EncodedSpanBatch): Uint8Array {
  const { numbers: x, strings, values } = batch;
  // span starts, grouped by resource then scope in order of first appearance (as the SDK groups)
  const groups = new Map<number, Map<number, number[]>>();
  let n = 0;
  for (let i = 0; i < batch.count; i++) {
    const resource = x[n + SPAN.resource];
    let scopes = groups.get(resource);
    if (scopes === undefined) groups.set(resource, (scopes = new Map()));
    const scope = x[n + SPAN.scope];
    let spans = scopes.get(scope);
    if (spans === undefined) scopes.set(scope, (spans = []));
    spans.push(n, i);
    n += spanNumbers(x[n + SPAN.attributeCount]);
  }

  const ids = idBytes(batch);
  const utf8: (Buffer | undefined)[] = new Array(strings.length);
  const text = (i: number): Buffer => (utf8[i] ??= Buffer.from(strings[i], 'utf8'));
  // the whole `attributes` field (tag, length, KeyValue) of each distinct string attribute
  const stringAttrs = new Map<number, Uint8Array>();
  const stringAttr = (k: number, v: number): Uint8Array => {
    const id = k * strings.length + v;
    let b = stringAttrs.get(id);
    if (b === undefined) {
      const key = text(k);
      const value = text(v);
      const w = new Writer(key.length + value.length + 16);
      w.tag(9, WIRE_LEN);
      const kv = w.begin();
      w.tag(1, WIRE_LEN);
      w.bytes(key);
      w.tag(2, WIRE_LEN);
      const any = w.begin();
      w.tag(1, WIRE_LEN);
      w.bytes(value);
      w.end(any);
      w.end(kv);
      stringAttrs.set(id, (b = w.finish()));
    }
    return b;
  };

  const w = new Writer(4096 + x.length * 24);
  for (const [resourceAt, scopes] of groups) {
    const resource = batch.resources[resourceAt];
    w.tag(1, WIRE_LEN); // ExportTraceServiceRequest.resource_spans
    const rs = w.begin();
    w.tag(1, WIRE_LEN); // ResourceSpans.resource
    const r = w.begin();
    writeAttributes(w, 1, resource.attributes);
    w.tag(2, WIRE_VARINT);
    w.uint32(0);
    w.end(r);
    for (const [scopeAt, spans] of scopes) {
      const scope = batch.scopes[scopeAt];
      w.tag(2, WIRE_LEN); // ResourceSpans.scope_spans
      const ss = w.begin();
      w.tag(1, WIRE_LEN); // ScopeSpans.scope
      const sc = w.begin();
      w.tag(1, WIRE_LEN);
      w.string(scope.name);
      if (scope.version) {
        w.tag(2, WIRE_LEN);
        w.string(scope.version);
      }
      w.end(sc);
      for (let s = 0; s < spans.length; s += 2) writeSpan(w, spans[s], spans[s + 1]);
      if (scope.schemaUrl) {
        w.tag(3, WIRE_LEN);
        w.string(scope.schemaUrl);
      }
      w.end(ss);
    }
    if (resource.schemaUrl) {
      w.tag(3, WIRE_LEN);
      w.string(resource.schemaUrl);
    }
    w.end(rs);
  }
  return w.finish();

  function writeSpan(w: Writer, n: number, i: number): void {
    w.tag(2, WIRE_LEN); // ScopeSpans.spans
    const span = w.begin2();
    const idAt = i * ID_BYTES;
    w.tag(1, WIRE_LEN);
    w.idBytes(ids, idAt, 16);
    w.tag(2, WIRE_LEN);
    w.idBytes(ids, idAt + 16, 8);
    const traceState = x[n + SPAN.traceState];
    if (traceState !== BATCH_NONE && strings[traceState] !== '') {
      w.tag(3, WIRE_LEN);
      w.bytes(text(traceState));
    }
    const parentKind = x[n + SPAN.parent];
    if (parentKind !== PARENT_NONE) {
      w.tag(4, WIRE_LEN);
      w.idBytes(ids, idAt + 24, 8);
    }
    w.tag(5, WIRE_LEN);
    w.bytes(text(x[n + SPAN.name]));
    w.tag(6, WIRE_VARINT); // API kinds count from 0, OTLP's from 1 (0 is unspecified)
    w.uint32(x[n + SPAN.kind] + 1);
    w.tag(7, WIRE_FIXED64);
    w.hrTime(x[n + SPAN.startSeconds], x[n + SPAN.startNanos]);
    w.tag(8, WIRE_FIXED64);
    w.hrTime(x[n + SPAN.endSeconds], x[n + SPAN.endNanos]);
    const attributeCount = x[n + SPAN.attributeCount];
    for (let a = n + FIRST_ATTRIBUTE, last = a + ATTRIBUTE_NUMBERS * attributeCount; a < last; a += ATTRIBUTE_NUMBERS) {
      const key = x[a + ATTRIBUTE.key];
      const type = x[a + ATTRIBUTE.type];
      const v = x[a + ATTRIBUTE.value];
      if (type === VALUE_STRING) {
        w.raw(stringAttr(key, v));
        continue;
      }
      w.tag(9, WIRE_LEN);
      const kv = w.begin();
      w.tag(1, WIRE_LEN);
      w.bytes(text(key));
      w.tag(2, WIRE_LEN);
      const any = w.begin();
      if (type === VALUE_NUMBER) writeNumber(w, v);
      else if (type === VALUE_TRUE || type === VALUE_FALSE) {
        w.tag(2, WIRE_VARINT);
        w.uint32(type === VALUE_TRUE ? 1 : 0);
      } else writeAnyValue(w, values[v]);
      w.end(any);
      w.end(kv);
    }
    w.tag(10, WIRE_VARINT); // dropped_attributes_count
    w.uint32(x[n + SPAN.droppedAttributes]);
    const events = x[n + SPAN.events];
    if (events !== BATCH_NONE) for (const e of values[events] as TimedEvent[]) writeEvent(w, e);
    w.tag(12, WIRE_VARINT); // dropped_events_count
    w.uint32(x[n + SPAN.droppedEvents]);
    const links = x[n + SPAN.links];
    if (links !== BATCH_NONE) for (const l of values[links] as PlainLink[]) writeLink(w, l);
    w.tag(14, WIRE_VARINT); // dropped_links_count
    w.uint32(x[n + SPAN.droppedLinks]);
    w.tag(15, WIRE_LEN);
    const status = w.begin();
    const message = x[n + SPAN.statusMessage];
    if (message !== BATCH_NONE && strings[message] !== '') {
      w.tag(2, WIRE_LEN);
      w.bytes(text(message));
    }
    w.tag(3, WIRE_VARINT);
    w.uint32(x[n + SPAN.statusCode]);
    w.end(status);
    w.tag(16, WIRE_FIXED32);
    w.fixed32(flags(x[n + SPAN.traceFlags], parentKind === PARENT_REMOTE));
    w.endReserved(span, 2);
  }
}
