import type { ServerHttp2Stream } from 'node:http2';
import type { Server } from '@grpc/grpc-js';
import { grpcHttp2Servers } from './grpc-http2-servers';

/*
 * Works around a hidden-class churn in node:http2 on Node 20 (docs/BENCHMARKS.md, Session 7).
 *
 * Every gRPC answer begins with `stream.respond(headers, options)`, and grpc-js passes the same
 * options object every time (its module constant `{ waitForTrailers: true }`). Node 20's respond
 * copies it (`options = { ...options }`) and then adds `endStream` to the copy. V8 11 gives the
 * copy of an object in fast mode a map outside the transition tree, so adding a property to it
 * makes a new map, every call: one map per answer, with its descriptor array and inline-cache
 * handlers, allocated in the old generation (~27k of each dead at every full GC under load), and
 * every megamorphic cache that sees the copy fills with maps that are used once.
 *
 * Copies of an object in dictionary mode take V8's generic path, whose results share their maps.
 * So the options object grpc-js reuses is switched to dictionary mode, once, in place: the same
 * properties, values and order. To find it, `respond` of the server streams' prototype is wrapped
 * until the same options object comes a second time (a shared constant, not a literal made per
 * call); then that object is switched and the original `respond` put back, so calls after that
 * cost nothing. If no object repeats within the first responses, the wrapper is removed anyway.
 *
 * Applied only on the Node majors whose node:http2 this was checked against (Node 22 copies into
 * a null-prototype object, which is in dictionary mode from the start).
 */

/** Node majors whose ServerHttp2Stream#respond copies its options with a plain object spread. */
const VERIFIED_NODE_MAJORS = [20];
/** Responses watched for a repeated options object before the wrapper gives up. */
export const WATCHED_RESPONSES = 64;

type Respond = (this: ServerHttp2Stream, headers?: unknown, options?: unknown) => void;
interface StreamPrototype {
  respond: Respond;
}

/** Prototypes whose `respond` is (or was) watched: once per process, whatever the servers. */
const watched = new WeakSet<object>();

/**
 * Switches `o` to dictionary mode in place, keeping its own properties, their values, attributes
 * and order: V8 leaves fast mode when a property other than the last added one is deleted.
 * False, and `o` unchanged, when it cannot be changed so (not extensible, or a property that is
 * not configurable) or has no property (copies of an empty object share their maps already).
 */
export function toDictionaryMode(o: object): boolean {
  if (!Object.isExtensible(o)) return false;
  const keys = Reflect.ownKeys(o);
  if (keys.length === 0) return false;
  const descriptors = Object.getOwnPropertyDescriptors(o) as Record<string | symbol, PropertyDescriptor>;
  if (keys.some((k) => descriptors[k].configurable !== true)) return false;
  const last = Symbol('keyward.last');
  const target = o as Record<string | symbol, unknown>;
  target[last] = true; // so the first delete below is not of the last property
  for (const k of keys) {
    delete target[k];
    Object.defineProperty(o, k, descriptors[k]);
  }
  delete target[last];
  return true;
}

/** Why the workaround is not applied in this process, or undefined when it is. */
export function responseOptionsUnsupported(nodeVersion = process.versions.node): string | undefined {
  const major = Number(nodeVersion.split('.')[0]);
  if (!VERIFIED_NODE_MAJORS.includes(major)) return `node:http2 respond() not verified on Node ${nodeVersion} (verified: ${VERIFIED_NODE_MAJORS.join(', ')})`;
  return undefined;
}

/**
 * Watches the first server stream of grpc-js servers for the options object grpc-js reuses:
 * `attach` each server once it is bound. `onUnsupported` hears, once, why nothing was done.
 */
export class Http2ResponseOptions {
  /** Options objects switched to dictionary mode; `gaveUp`: no object repeated in the watched responses. */
  readonly stats = { normalized: 0, gaveUp: false };
  private reported = false;

  constructor(private readonly onUnsupported: (reason: string) => void) {}

  attach(server: Server): void {
    const unsupported = responseOptionsUnsupported();
    if (unsupported !== undefined) return this.report(unsupported);
    const servers = grpcHttp2Servers(server);
    if (servers === undefined) return this.report('grpc-js keeps its HTTP/2 servers elsewhere than this version expects');
    for (const http2Server of servers.keys()) {
      // the first stream of each server: all share one prototype, watched once per process
      http2Server.prependOnceListener('stream', (stream: ServerHttp2Stream) => this.watch(Object.getPrototypeOf(stream) as StreamPrototype));
    }
  }

  private watch(proto: StreamPrototype): void {
    if (watched.has(proto)) return;
    watched.add(proto);
    const original = proto.respond;
    if (typeof original !== 'function') return this.report('node:http2 server streams have no respond()');
    const seen = new WeakSet<object>();
    let responses = 0;
    const restore = (): void => {
      if (proto.respond === wrapper) proto.respond = original;
    };
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    const wrapper: Respond = function (headers, options) {
      if (typeof options === 'object' && options !== null) {
        if (seen.has(options)) {
          restore();
          if (toDictionaryMode(options)) self.stats.normalized++;
        } else seen.add(options);
      }
      if (++responses >= WATCHED_RESPONSES && proto.respond === wrapper) {
        restore();
        self.stats.gaveUp = true;
      }
      return original.call(this, headers, options);
    };
    proto.respond = wrapper;
  }

  private report(reason: string): void {
    if (this.reported) return;
    this.reported = true;
    this.onUnsupported(reason);
  }
}
