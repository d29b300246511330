import type { ServerHttp2Session } from 'node:http2';
import { types } from 'node:util';
import type { Server } from '@grpc/grpc-js';
import { grpcHttp2Servers } from './grpc-http2-servers';

/*
 * Works around a garbage-collection pathology of node:http2 (docs/BENCHMARKS.md, "Session 5").
 *
 * node:http2 keeps each session's open streams in a Map (`session[kState].streams`): one set and
 * one delete per call. V8 rebuilds a Map's hash table every few dozen such changes, and the table
 * it retires points to its successor and still holds the streams it had. Once a full GC has moved
 * a live table into the old generation, each retired table keeps the next one, and that one's
 * streams with every object of their calls, alive through the next scavenge, which promotes them:
 * every call's objects are copied and promoted, for the life of the process (each later full GC
 * starts a new chain).
 *
 * A table kept in an object's elements (which leave no chain behind) answers the same calls. It
 * replaces the Map of each session of keyward's own gRPC servers, only on the Node major versions
 * whose node:http2 internals this was checked against, and only when the Map is found where
 * expected (the `state` symbol), empty, and a Map. Otherwise the session is left as it is.
 */

/** Node majors whose node:http2 calls only get, set, delete, size and forEach on the stream Map. */
const VERIFIED_NODE_MAJORS = [20];

/** A Map from stream id to stream with the Map API node:http2 uses, without Map's hash-table chains. */
export class StreamTable<V extends object> {
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

  /** In ascending id order (a Map's is insertion order; node:http2 relies on neither). */
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

/**
 * Gives one server session a StreamTable; false (and the session unchanged) when its internal
 * state is not the one this was written against.
 */
export function useStreamTable(session: ServerHttp2Session): boolean {
  const state = Object.getOwnPropertySymbols(session).find((s) => s.description === 'state');
  if (state === undefined) return false;
  const st = (session as unknown as Record<symbol, { streams?: unknown } | undefined>)[state];
  if (st === undefined || st === null) return false;
  if (st.streams instanceof StreamTable) return true;
  if (!types.isMap(st.streams) || st.streams.size !== 0) return false;
  st.streams = new StreamTable();
  return true;
}

/** Why stream tables cannot be used at all in this process, or undefined when they can. */
export function streamTableUnsupported(nodeVersion = process.versions.node): string | undefined {
  const major = Number(nodeVersion.split('.')[0]);
  if (!VERIFIED_NODE_MAJORS.includes(major)) return `node:http2 internals not verified on Node ${nodeVersion} (verified: ${VERIFIED_NODE_MAJORS.join(', ')})`;
  return undefined;
}

/**
 * Stream tables for the sessions of grpc-js servers: `attach` each server once it is bound. The
 * HTTP/2 servers are found in grpc-js's private `http2Servers` (1.10 to 1.14); without them, or on
 * an unverified Node, nothing changes and `onUnsupported` hears why, once.
 */
export class Http2StreamTables {
  /** Sessions given a StreamTable, and left with Node's Map. */
  readonly stats = { used: 0, skipped: 0 };
  private reported = false;

  constructor(private readonly onUnsupported: (reason: string) => void) {}

  attach(server: Server): void {
    const unsupported = streamTableUnsupported();
    if (unsupported !== undefined) return this.report(unsupported);
    const servers = grpcHttp2Servers(server);
    if (servers === undefined) return this.report('grpc-js keeps its HTTP/2 servers elsewhere than this version expects');
    for (const [http2Server, info] of servers.entries()) {
      http2Server.on('session', (session) => this.use(session));
      // sessions accepted between the bind and now (their Map is used only if still empty)
      for (const session of info.sessions ?? []) this.use(session);
    }
  }

  private use(session: ServerHttp2Session): void {
    if (useStreamTable(session)) this.stats.used++;
    else {
      this.stats.skipped++;
      this.report('a session\'s stream Map is not where or what this Node version is expected to have');
    }
  }

  private report(reason: string): void {
    if (this.reported) return;
    this.reported = true;
    this.onUnsupported(reason);
  }
}
