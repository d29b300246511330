import { EventEmitter } from 'node:events';
import type { Server } from '@grpc/grpc-js';
import fc from 'fast-check';
import { Http2ResponseOptions, responseOptionsUnsupported, toDictionaryMode, WATCHED_RESPONSES } from '../../../src/transport/grpc/http2-response-options';
import { v8Natives } from '../helpers/v8-natives';

const v8 = v8Natives();
const onNode20 = responseOptionsUnsupported() === undefined ? it : it.skip;

/** What Node 20's ServerHttp2Stream#respond does with its options (lib/internal/http2/core.js). */
function copyAsRespondDoes(options: object): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...options };
  copy.endStream = !!copy.endStream;
  return copy;
}

/** How many of `n` consecutive copies got a map of their own. */
function newMaps(options: object, n: number): number {
  let previous = copyAsRespondDoes(options);
  let fresh = 0;
  for (let i = 0; i < n; i++) {
    const copy = copyAsRespondDoes(options);
    if (!v8.haveSameMap(copy, previous)) fresh++;
    previous = copy;
  }
  return fresh;
}

describe('toDictionaryMode', () => {
  it("switches grpc-js's response options to dictionary mode, keeping what they say", () => {
    const options = { waitForTrailers: true };
    expect(v8.hasFastProperties(options)).toBe(true);
    expect(toDictionaryMode(options)).toBe(true);
    expect(v8.hasFastProperties(options)).toBe(false);
    expect(options).toEqual({ waitForTrailers: true });
    expect(Reflect.ownKeys(options)).toEqual(['waitForTrailers']);
  });

  it('keeps every own property, its attributes and the order, symbols included', () => {
    const tag = Symbol('tag');
    const o: Record<string | symbol, unknown> = { a: 1, b: 'two' };
    Object.defineProperty(o, 'hidden', { value: [3], enumerable: false, writable: false, configurable: true });
    o[tag] = null;
    const before = { keys: Reflect.ownKeys(o), descriptors: Object.getOwnPropertyDescriptors(o) };
    expect(toDictionaryMode(o)).toBe(true);
    expect(Reflect.ownKeys(o)).toEqual(before.keys);
    expect(Object.getOwnPropertyDescriptors(o)).toEqual(before.descriptors);
    expect(v8.hasFastProperties(o)).toBe(false);
  });

  it('keeps the contents and key order of any plain object', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.jsonValue(), { minKeys: 1, maxKeys: 12 }), (d) => {
        const o = { ...d };
        const keys = Reflect.ownKeys(o);
        expect(toDictionaryMode(o)).toBe(true);
        expect(Reflect.ownKeys(o)).toEqual(keys);
        expect(o).toEqual(d);
      }),
    );
  });

  it('leaves an object it cannot change so, or need not, as it is', () => {
    const cases: object[] = [
      Object.freeze({ a: 1 }),
      Object.seal({ a: 1 }),
      Object.preventExtensions({ a: 1 }),
      Object.defineProperty({ b: 2 }, 'a', { value: 1, enumerable: true, configurable: false }),
      {},
    ];
    for (const o of cases) {
      const before = { keys: Reflect.ownKeys(o), descriptors: Object.getOwnPropertyDescriptors(o), fast: v8.hasFastProperties(o) };
      expect(toDictionaryMode(o)).toBe(false);
      expect({ keys: Reflect.ownKeys(o), descriptors: Object.getOwnPropertyDescriptors(o), fast: v8.hasFastProperties(o) }).toEqual(before);
    }
  });
});

describe('the V8 behaviour it works around', () => {
  onNode20('copies of a fast-mode object, given one more property, get a new map every time', () => {
    expect(newMaps({ waitForTrailers: true }, 1000)).toBeGreaterThan(990);
  });

  it('copies of the same object in dictionary mode share one map', () => {
    const options = { waitForTrailers: true };
    toDictionaryMode(options);
    expect(newMaps(options, 1000)).toBe(0);
    expect(v8.hasFastProperties(options)).toBe(false); // copying did not move it back to fast mode
  });
});

describe('responseOptionsUnsupported', () => {
  it('applies on Node 20, whose respond() this was checked against, and says why not elsewhere', () => {
    expect(responseOptionsUnsupported('20.20.2')).toBeUndefined();
    expect(responseOptionsUnsupported('22.4.0')).toMatch(/not verified on Node 22\.4\.0 \(verified: 20\)/);
  });
});

describe('Http2ResponseOptions', () => {
  /** A grpc-js server as far as attach looks: its private HTTP/2 servers, here one emitter. */
  function fakeGrpcServer() {
    const http2Server = new EventEmitter();
    return { grpc: { http2Servers: new Map([[http2Server, { sessions: new Set() }]]) } as unknown as Server, http2Server };
  }

  /** A server stream class of its own for each test: the workaround patches the prototype. */
  function fakeStreams() {
    const calls: { self: unknown; headers: unknown; options: unknown }[] = [];
    class Stream {
      respond(headers?: unknown, options?: unknown): string {
        calls.push({ self: this, headers, options });
        return 'answered';
      }
    }
    return { Stream, original: Stream.prototype.respond, calls };
  }

  const start = () => {
    const reasons: string[] = [];
    const workaround = new Http2ResponseOptions((r) => reasons.push(r));
    const { grpc, http2Server } = fakeGrpcServer();
    workaround.attach(grpc);
    return { workaround, http2Server, reasons };
  };

  onNode20('switches the options object that comes twice, then puts respond() back', () => {
    const { workaround, http2Server, reasons } = start();
    const { Stream, original, calls } = fakeStreams();
    const first = new Stream();
    http2Server.emit('stream', first);
    expect(Stream.prototype.respond).not.toBe(original); // watched from the first stream on

    const shared = { waitForTrailers: true };
    const headers = { ':status': 200 };
    expect(first.respond(headers, shared)).toBe('answered');
    expect(first.respond(headers, { endStream: true })).toBe('answered'); // a literal made per call: not touched
    expect(workaround.stats.normalized).toBe(0);
    const second = new Stream();
    expect(second.respond(headers, shared)).toBe('answered');

    expect(workaround.stats).toEqual({ normalized: 1, gaveUp: false });
    expect(v8.hasFastProperties(shared)).toBe(false);
    expect(shared).toEqual({ waitForTrailers: true });
    expect(Stream.prototype.respond).toBe(original);
    // every call reached Node's respond with its stream, headers and options
    expect(calls.map((c) => [c.self, c.headers, c.options])).toEqual([
      [first, headers, shared],
      [first, headers, { endStream: true }],
      [second, headers, shared],
    ]);
    expect(reasons).toEqual([]);
  });

  onNode20(`gives up after ${WATCHED_RESPONSES} responses in which no options object repeats`, () => {
    const { workaround, http2Server } = start();
    const { Stream, original } = fakeStreams();
    const stream = new Stream();
    http2Server.emit('stream', stream);
    for (let i = 0; i < WATCHED_RESPONSES - 1; i++) stream.respond({}, { endStream: false });
    expect(Stream.prototype.respond).not.toBe(original);
    stream.respond({}, undefined); // no options at all counts as a response too
    expect(Stream.prototype.respond).toBe(original);
    expect(workaround.stats).toEqual({ normalized: 0, gaveUp: true });
  });

  onNode20('watches a prototype once, whatever the servers and streams', () => {
    const a = start();
    const b = start();
    const { Stream, original } = fakeStreams();
    a.http2Server.emit('stream', new Stream());
    const wrapped = Stream.prototype.respond;
    b.http2Server.emit('stream', new Stream());
    a.http2Server.emit('stream', new Stream()); // prependOnceListener: the first stream only
    expect(Stream.prototype.respond).toBe(wrapped);
    const shared = { waitForTrailers: true };
    new Stream().respond({}, shared);
    new Stream().respond({}, shared);
    expect(Stream.prototype.respond).toBe(original);
    expect(a.workaround.stats.normalized + b.workaround.stats.normalized).toBe(1);
    // once restored, later streams of a new server leave it alone
    const c = start();
    c.http2Server.emit('stream', new Stream());
    expect(Stream.prototype.respond).toBe(original);
  });

  it('reports, once, a grpc-js that keeps its HTTP/2 servers elsewhere', () => {
    const reasons: string[] = [];
    const workaround = new Http2ResponseOptions((r) => reasons.push(r));
    workaround.attach({} as Server);
    workaround.attach({} as Server);
    expect(reasons).toHaveLength(1);
    expect(reasons[0]).toMatch(/node:http2 respond\(\) not verified|grpc-js keeps its HTTP\/2 servers elsewhere/);
    expect(workaround.stats).toEqual({ normalized: 0, gaveUp: false });
  });
});
