import type { BenchContext } from './context';
import { runH2load, type H2loadOptions, type H2loadResult } from './h2load';
import { SystemCpuMeter, waitForQuiet } from './machine';
import { CpuMeter } from './processes';

/**
 * One h2load run against one server process, with the CPU of the server (and of any helper
 * such as redis-server), of h2load and of the whole machine measured over the same window, and
 * with the checks that the answers were real: no failed stream, only 2xx, and response bodies
 * of the size of a real answer (a gRPC error is a trailers-only response without any DATA).
 */
export interface MeasuredRun {
  h2: H2loadResult;
  serverCores: number;
  helperCores: number;
  /** Busy cores machine-wide not accounted for by the server, its helper and h2load. */
  otherCores: number;
  dataBytesPerRequest: number;
}

export interface MeasureOptions {
  name: string;
  serverPid: number;
  helperPid?: number;
  /** Bytes of one real answer's body (gRPC frames); 0 skips the size check. */
  expectedResponseBytes: number;
  h2load: Omit<H2loadOptions, 'durationS' | 'warmupS'> & { durationS?: number; warmupS?: number };
}

export async function measure(ctx: BenchContext, o: MeasureOptions): Promise<MeasuredRun> {
  const quiet = await waitForQuiet();
  if (quiet.waitedMs > 1_500) ctx.log(`  (waited ${Math.round(quiet.waitedMs / 1000)} s for the machine to be quiet; busy ${quiet.busyCores.toFixed(2)} cores)`);
  const durationS = o.h2load.durationS ?? ctx.settings.durationS;
  const warmupS = o.h2load.warmupS ?? ctx.settings.warmupS;
  const server = new CpuMeter(o.serverPid);
  const helper = o.helperPid === undefined ? undefined : new CpuMeter(o.helperPid);
  const system = new SystemCpuMeter();
  let window: { server: number; helper: number; system: number } | undefined;
  const timer = setTimeout(() => {
    server.start();
    helper?.start();
    system.start();
    setTimeout(() => {
      window = { server: server.stop().cores, helper: helper?.stop().cores ?? 0, system: system.stop() };
    }, durationS * 1000);
  }, warmupS * 1000);
  let h2: H2loadResult;
  try {
    h2 = await runH2load(ctx.h2load, { ...o.h2load, durationS, warmupS });
  } finally {
    clearTimeout(timer);
  }
  // the CPU window closes on its own timer, a few ms after h2load's measurement ended
  while (window === undefined) await new Promise((r) => setTimeout(r, 10));
  const dataBytesPerRequest = h2.succeeded > 0 ? h2.dataBytes / h2.succeeded : 0;
  const problems: string[] = [];
  if (h2.succeeded === 0) problems.push('no request succeeded');
  if (h2.statusOther > 0) problems.push(`${h2.statusOther} non-2xx answers`);
  // streams still open when the duration ends are cut off; more than that is an error
  if (h2.failed + h2.errored + h2.timeout > Math.max(10, h2.total * 0.001)) {
    problems.push(`${h2.failed} failed, ${h2.errored} errored, ${h2.timeout} timed out`);
  }
  if (o.expectedResponseBytes > 0 && dataBytesPerRequest < 0.9 * o.expectedResponseBytes) {
    problems.push(
      `answers carry ${dataBytesPerRequest.toFixed(1)} body bytes on average, a real answer has ${o.expectedResponseBytes}: gRPC errors?`,
    );
  }
  if (problems.length > 0) throw new Error(`${o.name}: h2load run is not valid: ${problems.join('; ')}\n${h2.command}\n${h2.stdout}`);
  return {
    h2,
    serverCores: window.server,
    helperCores: window.helper,
    otherCores: Math.max(0, window.system - window.server - window.helper - h2.h2loadCores),
    dataBytesPerRequest,
  };
}

/** Busy cores of other processes above which a run counts as disturbed and is repeated. */
export const DISTURBED_CORES = 0.25;
const MAX_ATTEMPTS = Number(process.env.BENCH_MAX_ATTEMPTS ?? 2);

/**
 * Runs a measurement until other processes stayed below DISTURBED_CORES during it (at most
 * BENCH_MAX_ATTEMPTS times, default 2); returns the least disturbed attempt, flagged when even
 * that one was disturbed. The bench shares its machine with whatever else runs there.
 */
export async function undisturbed<T>(
  ctx: BenchContext,
  label: string,
  run: () => Promise<T>,
  otherCores: (t: T) => number,
): Promise<T & { disturbed: boolean }> {
  let best: T | undefined;
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const r = await run();
    if (best === undefined || otherCores(r) < otherCores(best)) best = r;
    if (otherCores(r) <= DISTURBED_CORES) break;
    ctx.log(`  ${label}: other processes used ${otherCores(r).toFixed(2)} cores during the run${attempt < MAX_ATTEMPTS ? '; repeating it' : ''}`);
  }
  return { ...best!, disturbed: otherCores(best!) > DISTURBED_CORES };
}
