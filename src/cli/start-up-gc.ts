import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/*
 * One full garbage collection for `keyward serve`, once the sidecar is wired and before its
 * listeners open (docs/BENCHMARKS.md, Session 7).
 *
 * V8 sets the old generation's limit from the live heap at each full collection. Where start-up
 * happens to trigger the first one early (with tracing on, the SDK loaded by the preload does it
 * at about 10 MiB of the sidecar's 20), the limit is set from a part of the heap the sidecar
 * serves with, and full collections of the whole heap (30 to 200 ms here) follow under load every
 * few seconds until it has grown; a sidecar whose first one came after start-up (tracing off)
 * goes on for a minute without one. One collection with everything loaded sets the limit from
 * the heap the sidecar really has, whatever start-up did, and frees start-up's garbage before the
 * first request. A library user's process is left alone: only `keyward serve` calls this.
 */

export interface StartUpGc {
  readonly heapUsedBefore: number;
  readonly heapUsedAfter: number;
  readonly ms: number;
}

/** Runs one full collection; undefined when this Node does not allow it (nothing is changed then). */
export function collectStartUpGarbage(): StartUpGc | undefined {
  const gc = fullGc();
  if (gc === undefined) return undefined;
  const heapUsedBefore = process.memoryUsage().heapUsed;
  const started = performance.now();
  gc();
  return { heapUsedBefore, heapUsedAfter: process.memoryUsage().heapUsed, ms: performance.now() - started };
}

/** V8's `gc()`: the global one under --expose-gc, or one from a context made while the flag is set. */
function fullGc(): (() => void) | undefined {
  const global = (globalThis as { gc?: unknown }).gc;
  if (typeof global === 'function') return global as () => void;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  } finally {
    setFlagsFromString('--no-expose-gc'); // contexts made later get no `gc`
  }
}
