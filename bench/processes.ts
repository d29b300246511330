import { spawn, fork, type ChildProcess, type SpawnOptions, type ForkOptions } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Every child process of the bench (redis-server, keyward, floor servers, h2load, stream
 * clients) is started through here, in its own process group, and killed when the bench ends,
 * whatever the reason (normal end, exception, Ctrl-C, SIGTERM).
 */

/** The repository root (compiled files live in dist-bench/bench/). */
export const ROOT = join(__dirname, '..', '..');
/** Compiled bench entry points (floor-server.js, stream-client.js). */
export const BENCH_DIST = __dirname;

const live = new Set<ChildProcess>();

export function track(child: ChildProcess): ChildProcess {
  live.add(child);
  const forget = (): void => {
    live.delete(child);
  };
  child.once('exit', forget);
  child.once('error', forget);
  return child;
}

/** spawn in a new process group (so the whole group can be killed), tracked for clean-up. */
export function spawnTracked(command: string, args: readonly string[], opts: SpawnOptions = {}): ChildProcess {
  return track(spawn(command, args, { ...opts, detached: true }));
}

/** fork (a Node child with an IPC channel) in a new process group, tracked for clean-up. */
export function forkTracked(modulePath: string, args: readonly string[], opts: ForkOptions = {}): ChildProcess {
  return track(fork(modulePath, args, { ...opts, detached: true }));
}

/** Resolves with the exit code (or signal name) once the child has exited. */
export function exited(child: ChildProcess): Promise<number | string | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  if (child.signalCode !== null) return Promise.resolve(child.signalCode);
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => resolve(code ?? signal));
    child.once('error', () => resolve(null));
  });
}

function isRunning(child: ChildProcess): boolean {
  return child.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Sends `signal` to the child's process group; SIGKILLs it after `graceMs`. */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 5_000): Promise<void> {
  if (!isRunning(child)) return;
  const done = exited(child);
  killGroup(child, signal);
  const timer = setTimeout(() => killGroup(child, 'SIGKILL'), graceMs);
  await done;
  clearTimeout(timer);
  // anything the child left behind in its group
  killGroup(child, 'SIGKILL');
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    try {
      child.kill(signal);
    } catch {
      // already gone
    }
  }
}

/** SIGKILLs every tracked child (and its group) at once; used on the way out. */
export function killAll(): void {
  for (const child of live) killGroup(child, 'SIGKILL');
  live.clear();
}

let installed = false;

/** Installs the exit and signal handlers that kill every child. Call once at start. */
export function installCleanup(): void {
  if (installed) return;
  installed = true;
  process.on('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      process.stderr.write(`\nbench: ${signal}, stopping every child process\n`);
      killAll();
      process.exit(130);
    });
  }
}

const CLOCK_TICKS = 100; // USER_HZ, 100 on every Linux configuration we care about

/** CPU seconds (user + system, all threads) used so far by a process, from /proc/<pid>/stat. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // the command name (field 2) may contain spaces: fields after the closing parenthesis
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  return (utime + stime) / CLOCK_TICKS;
}

/** Resident set size in MiB, from /proc/<pid>/status VmRSS. */
export function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (!m) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(m[1]) / 1024;
}

/** Measures how much CPU a running process uses between `start()` and `stop()`. */
export class CpuMeter {
  private t0 = 0;
  private c0 = 0;

  constructor(private readonly pid: number) {}

  start(): void {
    this.t0 = performance.now();
    this.c0 = cpuSeconds(this.pid);
  }

  /** Cores used on average (1.0 = one core fully busy). */
  stop(): { cpuSeconds: number; wallSeconds: number; cores: number } {
    const wallSeconds = (performance.now() - this.t0) / 1000;
    const used = cpuSeconds(this.pid) - this.c0;
    return { cpuSeconds: used, wallSeconds, cores: used / wallSeconds };
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
