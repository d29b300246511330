import http2 from 'node:http2';

/*
 * Works around a garbage-collection pathology that made a sidecar 12-35 % slower once it had run
 * one full GC under load (docs/BENCHMARKS.md, "Position in a rep").
 *
 * node:http2 keeps each session's open streams in a Map (`session[kState].streams`): one set and one
 * delete per call. V8 rebuilds a Map's hash table every few dozen such changes, and the table it
 * retires keeps a pointer to its successor and still holds the streams it had. A mark-compact moves
 * the live table into the old generation; from then on each retired table keeps the next one, and
 * that one's streams with every object of their calls, alive through the following scavenge, which
 * promotes them, and so on: every call's objects are copied and promoted. Measured on cached
 * ValidateKey: 1.6 MB promoted per scavenge instead of 0.15, scavenge pauses 6.8 ms instead of 2.3,
 * and it lasts for the life of the process, since every later mark-compact starts a new chain.
 *
 * A table kept in a plain object (V8 dictionary elements, which leave no chain behind) answers the
 * same calls. It replaces the Map of each new session of every node:http2 server the process
 * creates (keyward's only HTTP/2 servers are grpc-js's) when that Map looks as expected: found
 * under the `state` symbol, empty, with the Map methods node:http2 calls. Otherwise the session is
 * left as it is. `KEYWARD_HTTP2_STREAM_TABLE=false` turns this off.
 */

/** A Map from stream id to stream with the Map API node:http2 uses, without Map's hash-table chains. */
export class StreamTable<V> {
  private items: Record<number, V> = Object.create(null) as Record<number, V>;
  private count = 0;

  get size(): number {
    return this.count;
  }

  get(id: number): V | undefined {
    return this.items[id];
  }

  has(id: number): boolean {
    return this.items[id] !== undefined;
  }

  set(id: number, value: V): this {
    if (this.items[id] === undefined) this.count++;
    this.items[id] = value;
    return this;
  }

  delete(id: number): boolean {
    if (this.items[id] === undefined) return false;
    delete this.items[id];
    this.count--;
    return true;
  }

  clear(): void {
    this.items = Object.create(null) as Record<number, V>;
    this.count = 0;
  }

  /** In ascending id order, which is the order streams were opened (ids only grow). */
  forEach(fn: (value: V, id: number, table: this) => void): void {
    for (const [id, value] of this.entries()) fn(value, id, this);
  }

  *entries(): IterableIterator<[number, V]> {
    // a snapshot of the ids: a callback may delete (a destroyed stream removes itself)
    for (const k of Object.keys(this.items)) {
      const value = this.items[Number(k)];
      if (value !== undefined) yield [Number(k), value];
    }
  }

  *keys(): IterableIterator<number> {
    for (const [id] of this.entries()) yield id;
  }

  *values(): IterableIterator<V> {
    for (const [, value] of this.entries()) yield value;
  }

  [Symbol.iterator](): IterableIterator<[number, V]> {
    return this.entries();
  }
}

const MAP_METHODS = ['get', 'set', 'delete', 'forEach'] as const;

/**
 * Gives one server session a StreamTable; false (and the session unchanged) when its internal
 * state is not the one this was written against.
 */
export function useStreamTable(session: http2.ServerHttp2Session): boolean {
  const state = Object.getOwnPropertySymbols(session).find((s) => s.description === 'state');
  if (state === undefined) return false;
  const st = (session as unknown as Record<symbol, { streams?: unknown } | undefined>)[state];
  const streams = st?.streams as Record<string, unknown> | undefined;
  if (st === undefined || streams === undefined || streams === null) return false;
  if (streams instanceof StreamTable) return true;
  if (streams.size !== 0 || MAP_METHODS.some((m) => typeof streams[m] !== 'function')) return false;
  st.streams = new StreamTable();
  return true;
}

let installed = false;
let used = 0;
let skipped = 0;

/**
 * From now on, every node:http2 server created in this process gives its sessions a StreamTable.
 * Call it before the gRPC servers bind. Idempotent; `onFirstSkip` (of the first call) hears of the
 * first session left with Node's Map (a Node version whose internals differ).
 */
export function installHttp2StreamTable(onFirstSkip?: () => void): void {
  if (installed) return;
  installed = true;
  const onSession = (session: http2.ServerHttp2Session) => {
    if (useStreamTable(session)) used++;
    else if (skipped++ === 0) onFirstSkip?.();
  };
  const createServer = http2.createServer;
  const createSecureServer = http2.createSecureServer;
  http2.createServer = function (this: unknown, ...args: unknown[]) {
    return (createServer as (...a: unknown[]) => http2.Http2Server).apply(this, args).on('session', onSession);
  } as typeof http2.createServer;
  http2.createSecureServer = function (this: unknown, ...args: unknown[]) {
    return (createSecureServer as (...a: unknown[]) => http2.Http2SecureServer).apply(this, args).on('session', onSession);
  } as typeof http2.createSecureServer;
}

/** Server sessions given a StreamTable, and left with Node's Map (none on the Node versions tested), since installHttp2StreamTable. */
export function http2StreamTableStats(): { used: number; skipped: number } {
  return { used, skipped };
}
