import { readFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { sleep } from './processes';

/** The machine the bench ran on, and how busy it was while measuring. */
export interface MachineInfo {
  nproc: number;
  cpuModel: string;
  memTotalGiB: number;
  node: string;
  kernel: string;
}

export function machineInfo(): MachineInfo {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1] ?? cpus()[0]?.model ?? 'unknown';
  let kernel = 'unknown';
  try {
    kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  } catch {
    // not Linux-like
  }
  return {
    nproc: cpus().length,
    cpuModel: model.trim(),
    memTotalGiB: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    node: process.version,
    kernel,
  };
}

/** Busy and total jiffies summed over every CPU, from the first line of /proc/stat. */
function systemJiffies(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal (guest time is already in user)
  const idle = v[3] + (v[4] ?? 0);
  const total = v.slice(0, 8).reduce((s, x) => s + (x || 0), 0);
  return { busy: total - idle, total };
}

/** Cores busy machine-wide (all processes) between start() and stop(). */
export class SystemCpuMeter {
  private j0 = systemJiffies();
  private t0 = performance.now();

  start(): void {
    this.j0 = systemJiffies();
    this.t0 = performance.now();
  }

  stop(): number {
    const j = systemJiffies();
    const seconds = (performance.now() - this.t0) / 1000;
    return (j.busy - this.j0.busy) / 100 / seconds;
  }
}

/**
 * Waits (at most `maxWaitMs`) until the machine has been nearly idle for one second: the bench
 * shares the machine with whatever else runs, and a busy neighbour skews every number. Returns
 * the busy cores seen in the last sample, so the report can say how quiet it was. The wait is
 * at most BENCH_QUIET_WAIT seconds (default 20; 0 = measure at once).
 */
export async function waitForQuiet(maxBusyCores = 0.3, maxWaitMs = Number(process.env.BENCH_QUIET_WAIT ?? 20) * 1000): Promise<{ busyCores: number; waitedMs: number }> {
  const started = Date.now();
  for (;;) {
    const meter = new SystemCpuMeter();
    meter.start();
    await sleep(1_000);
    const busyCores = meter.stop();
    const waitedMs = Date.now() - started;
    if (busyCores <= maxBusyCores || waitedMs >= maxWaitMs) return { busyCores, waitedMs };
  }
}
