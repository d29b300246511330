import type { BenchContext } from './context';
import type { ThroughputRun } from './results';
import { measure, undisturbed, type MeasuredRun } from './throughput';

/**
 * Throughput of several servers under the same h2load load, measured `reps` times interleaved
 * in mirrored pairs of reps (`repOrder`). Ratios come from the reps' ratios (`pairedRatio`);
 * the best run of each is reported beside them. This is how every ratio of the bench is
 * measured: numerator and reference in the same run, side by side.
 */
export interface Contender {
  /** Key in the returned record. */
  key: string;
  /** Name in the report. */
  name: string;
  serverPid: number;
  /** A process whose CPU is reported beside the server's (redis-server, the OTLP sink). */
  helper?: { pid: number; name: string };
  /** http://host:port/path */
  url: string;
  /** The pre-encoded gRPC request body. */
  dataFile: string;
  /** Bytes of one real answer (gRPC frame); answers must weigh at least 90% of it on average. */
  expectedResponseBytes: number;
  /** Called before each measured attempt (e.g. to read counters), and after it with its result. */
  before?: () => Promise<void>;
  after?: (run: MeasuredRun) => Promise<void>;
}

export type MeasuredAttempt = MeasuredRun & { disturbed: boolean };

/**
 * The order in which rep `rep` (1-based) measures `list`. Reps come in mirrored pairs: the
 * first of a pair in one order, the second in its reverse; pair k starts from the list rotated
 * by k. A sidecar measured later in a rep runs slower here than one measured first (it sat
 * idle while the others were loaded: up to 20-35% in run E), so in each pair every two
 * contenders trade places, and over the pairs each contender takes every position.
 */
export function repOrder<T>(rep: number, list: readonly T[]): T[] {
  const shift = Math.floor((rep - 1) / 2) % list.length;
  const rotated = [...list.slice(shift), ...list.slice(0, shift)];
  return rep % 2 === 1 ? rotated : rotated.reverse();
}

export async function interleaved(ctx: BenchContext, label: string, contenders: readonly Contender[]): Promise<Record<string, ThroughputRun>> {
  const runs = new Map<string, MeasuredAttempt[]>(contenders.map((c) => [c.key, []]));
  for (let rep = 1; rep <= ctx.settings.reps; rep++) {
    for (const c of repOrder(rep, contenders)) runs.get(c.key)!.push(await measureContender(ctx, `${label} rep ${rep}/${ctx.settings.reps}`, c));
  }
  return Object.fromEntries(contenders.map((c) => [c.key, bestRun(c.name, runs.get(c.key)!, c.expectedResponseBytes, c.helper?.name)]));
}

/** The servers of one rep of `interleavedFresh`. */
export interface FreshRep {
  contenders: readonly Contender[];
  /** Runs after the rep's measurements, before its processes stop (checks, counters). */
  finish?(): Promise<void>;
}

/** Anything `interleavedFresh` stops at the end of a rep (servers, redis-servers). */
export interface Stoppable {
  stop(): Promise<void>;
}

/** Registers a process of the current rep, to be stopped when the rep ends; returns it. */
export type Track = <T extends Stoppable>(process: T) => T;

/**
 * As `interleaved`, but every rep measures new server processes: `startRep` starts them,
 * registering each with `track`, and they are stopped (in reverse order) when the rep ends, also
 * on failure. Two processes of the same build and config differ by up to ~10% in throughput on
 * this VM (heap layout, JIT decisions, which core): two "tracing off" sidecars side by side gave
 * a median ratio of 0.91. So one process's luck must weigh on one rep only, and the median over
 * the rep pairs then drops it like any other outlier. Contender keys and names must be the
 * same in every rep.
 */
export async function interleavedFresh(ctx: BenchContext, label: string, startRep: (rep: number, track: Track) => Promise<FreshRep>): Promise<Record<string, ThroughputRun>> {
  const runs = new Map<string, MeasuredAttempt[]>();
  let first: readonly Contender[] | undefined;
  for (let rep = 1; rep <= ctx.settings.reps; rep++) {
    const processes: Stoppable[] = [];
    const track: Track = (p) => {
      processes.push(p);
      return p;
    };
    try {
      const r = await startRep(rep, track);
      first ??= r.contenders;
      for (const c of repOrder(rep, r.contenders)) {
        const list = runs.get(c.key) ?? [];
        runs.set(c.key, list);
        list.push(await measureContender(ctx, `${label} rep ${rep}/${ctx.settings.reps} (new processes)`, c));
      }
      await r.finish?.();
    } finally {
      for (const p of processes.reverse()) await p.stop();
    }
  }
  if (first === undefined) throw new Error(`${label}: no rep was run`);
  return Object.fromEntries(first.map((c) => [c.key, bestRun(c.name, runs.get(c.key)!, c.expectedResponseBytes, c.helper?.name)]));
}

/** One measured run of one contender (repeated while other processes disturbed it). */
async function measureContender(ctx: BenchContext, label: string, c: Contender): Promise<MeasuredAttempt> {
  const s = ctx.settings;
  ctx.log(`${label}: ${c.name}`);
  const attempt = async (): Promise<MeasuredRun> => {
    await c.before?.();
    const r = await measure(ctx, {
      name: c.name,
      serverPid: c.serverPid,
      helperPid: c.helper?.pid,
      expectedResponseBytes: c.expectedResponseBytes,
      h2load: { url: c.url, dataFile: c.dataFile, clients: s.h2loadClients, streams: s.h2loadStreams },
    });
    await c.after?.(r);
    return r;
  };
  const run = await undisturbed(ctx, c.name, attempt, (r) => r.otherCores);
  ctx.log(`  ${run.h2.reqPerSec.toFixed(0)} req/s (server ${run.serverCores.toFixed(2)} cores)`);
  return run;
}

/** The best of several attempts at one measurement, with every attempt's rate. */
export function bestRun(name: string, runs: readonly MeasuredAttempt[], expectedResponseBytes: number, helperName?: string): ThroughputRun {
  const top = runs.reduce((a, b) => (b.h2.reqPerSec > a.h2.reqPerSec ? b : a));
  return {
    name,
    reqPerSec: top.h2.reqPerSec,
    allRuns: runs.map((r) => r.h2.reqPerSec),
    meanMs: top.h2.meanMs,
    succeeded: top.h2.succeeded,
    status2xx: top.h2.status2xx,
    failed: top.h2.failed + top.h2.errored + top.h2.timeout,
    dataBytesPerRequest: top.dataBytesPerRequest,
    expectedResponseBytes,
    serverCores: top.serverCores,
    allCpuUsPerRequest: runs.map((r) => (r.serverCores / r.h2.reqPerSec) * 1e6),
    ...(helperName !== undefined && { helperName, helperCores: top.helperCores }),
    h2loadCores: top.h2.h2loadCores,
    otherCores: top.otherCores,
    disturbed: top.disturbed,
    command: top.h2.command,
  };
}
