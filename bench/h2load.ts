import { execFileSync } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { exited, spawnTracked } from './processes';

/**
 * Runs nghttp2's h2load (C, one thread) against a gRPC method with a pre-encoded request body
 * and parses its summary. h2load's own CPU time is measured with the shell's `times` builtin
 * (user + system of the finished child), so the report can show that the load generator was
 * not the bottleneck.
 */

export interface H2loadOptions {
  /** e.g. http://127.0.0.1:50051/keyward.v1.KeyService/ValidateKey */
  url: string;
  /** File with the length-prefixed gRPC request body. */
  dataFile: string;
  /** Connections (-c). */
  clients: number;
  /** Max concurrent streams per connection (-m). */
  streams: number;
  /** Measured duration (-D), seconds. */
  durationS: number;
  /** Warm-up before the measurement (--warm-up-time), seconds. */
  warmupS: number;
  /**
   * Instead of -D/--warm-up-time: a fixed number of requests (-n), with the connections opened
   * one per `connectPeriod` (-r 1 --rate-period), e.g. '1ms'. h2load's --rps timer ticks every
   * 10 ms at the most, so connections opened at staggered times spread their bursts over the tick.
   */
  fixed?: { requests: number; connectPeriod: string };
  /** Request rate per connection (--rps); unset = as fast as possible. */
  rpsPerClient?: number;
  /** Per-request log (--log-file): start time µs, status, duration µs. */
  logFile?: string;
}

export interface H2loadResult {
  /** The command line, for the report. */
  command: string;
  /** Requests per second over the measured duration. */
  reqPerSec: number;
  finishedS: number;
  total: number;
  succeeded: number;
  failed: number;
  errored: number;
  timeout: number;
  status2xx: number;
  statusOther: number;
  /** DATA frame payload bytes received (response bodies). */
  dataBytes: number;
  /** Mean request time, ms (h2load's "time for request"). */
  meanMs: number;
  maxMs: number;
  /** h2load's own CPU use: seconds, and cores (CPU seconds / wall seconds of the whole run). */
  h2loadCpuSeconds: number;
  h2loadCores: number;
  stdout: string;
}

/** The h2load binary on PATH, or undefined. */
export function findH2load(): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, 'h2load');
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

export function h2loadVersion(bin: string): string {
  return execFileSync(bin, ['--version'], { encoding: 'utf8' }).trim();
}

export async function runH2load(bin: string, o: H2loadOptions): Promise<H2loadResult> {
  const timing = o.fixed
    ? ['-n', String(o.fixed.requests), '-r', '1', '--rate-period', o.fixed.connectPeriod]
    : ['-D', String(o.durationS), '--warm-up-time', String(o.warmupS)];
  const args = [
    ...timing,
    '-c', String(o.clients),
    '-m', String(o.streams),
    '-t', '1',
    '-H', 'content-type: application/grpc',
    '-H', 'te: trailers',
    '-d', o.dataFile,
  ];
  if (o.rpsPerClient !== undefined) args.push('--rps', String(o.rpsPerClient));
  if (o.logFile !== undefined) args.push('--log-file', o.logFile);
  args.push(o.url);
  // `times` prints the shell's, then its children's, user and system CPU time.
  const script = '"$0" "$@"; rc=$?; times >&2; exit $rc';
  const started = performance.now();
  const child = spawnTracked('sh', ['-c', script, bin, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await exited(child);
  const wallS = (performance.now() - started) / 1000;
  const command = `h2load ${args.map(shellQuote).join(' ')}`;
  if (code !== 0) throw new Error(`h2load exited with ${code}\n${command}\n${stdout}\n${stderr}`);
  const cpu = parseTimes(stderr);
  return { command, ...parseH2loadOutput(stdout), h2loadCpuSeconds: cpu, h2loadCores: cpu / wallS, stdout };
}

function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** Children's user + system seconds from the `times` builtin (bash: 0m1.234s, dash: 0m1.234000s). */
export function parseTimes(text: string): number {
  const all = [...text.matchAll(/(\d+)m([\d.]+)s/g)].map((m) => Number(m[1]) * 60 + Number(m[2]));
  if (all.length < 4) return NaN;
  return all[all.length - 2] + all[all.length - 1];
}

function toMs(value: string, unit: string): number {
  const v = Number(value);
  switch (unit) {
    case 'us':
      return v / 1000;
    case 'ms':
      return v;
    case 's':
      return v * 1000;
    default:
      throw new Error(`unknown h2load time unit ${unit}`);
  }
}

export function parseH2loadOutput(out: string): Omit<H2loadResult, 'command' | 'h2loadCpuSeconds' | 'h2loadCores' | 'stdout'> {
  const need = (re: RegExp, what: string): RegExpExecArray => {
    const m = re.exec(out);
    if (!m) throw new Error(`cannot parse h2load output (${what}):\n${out}`);
    return m;
  };
  const fin = need(/finished in ([\d.]+)(us|ms|s), ([\d.]+) req\/s/, 'finished');
  const req = need(
    /requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout/,
    'requests',
  );
  const st = need(/status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx/, 'status codes');
  const traffic = need(/traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?, .*?\((\d+)\) data/, 'traffic');
  const t = need(/time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)/, 'time for request');
  return {
    reqPerSec: Number(fin[3]),
    finishedS: toMs(fin[1], fin[2]) / 1000,
    total: Number(req[1]),
    succeeded: Number(req[4]),
    failed: Number(req[5]),
    errored: Number(req[6]),
    timeout: Number(req[7]),
    status2xx: Number(st[1]),
    statusOther: Number(st[2]) + Number(st[3]) + Number(st[4]),
    dataBytes: Number(traffic[3]),
    meanMs: toMs(t[5], t[6]),
    maxMs: toMs(t[3], t[4]),
  };
}

/**
 * Reads h2load's --log-file (start µs since epoch, status, duration µs) and returns the
 * durations in ms of the successful requests that started at least `skipS` seconds after the
 * first one (with -D, h2load logs only the measured requests; with -n it logs all of them).
 */
export function readRequestLog(path: string, skipS: number): { durationsMs: number[]; failed: number; spanS: number } {
  const rows = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => l.split('\t').map(Number));
  if (rows.length === 0) return { durationsMs: [], failed: 0, spanS: 0 };
  let first = Infinity;
  let last = -Infinity;
  for (const [start] of rows) {
    if (start < first) first = start;
    if (start > last) last = start;
  }
  const from = first + skipS * 1e6;
  const durationsMs: number[] = [];
  let failed = 0;
  for (const [start, status, micros] of rows) {
    if (start < from) continue;
    if (status >= 200 && status < 300) durationsMs.push(micros / 1000);
    else failed++;
  }
  return { durationsMs, failed, spanS: (last - from) / 1e6 };
}
