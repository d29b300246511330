import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';

/**
 * What the server launchers (redis-server, nats-server) share: spawning a server process with its
 * output kept for error messages, finding a free port, retrying when the port was taken in the
 * meantime, stopping it, and a safety net that kills every server when the test process goes.
 */
export interface Running {
  readonly port: number;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  isRunning(): boolean;
  /** The last output of the process (stdout and stderr), for error messages. */
  output(): string;
}

const live = new Set<ChildProcess>();

export function spawnServer(command: string, args: readonly string[], port: number): Running {
  installSafetyNet();
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  const keep = (chunk: Buffer): void => {
    out = (out + chunk.toString()).slice(-16384);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let running = true;
  const exited = new Promise<void>((resolve) => {
    const done = (): void => {
      running = false;
      live.delete(child);
      resolve();
    };
    child.once('exit', done);
    child.once('error', (err) => {
      keep(Buffer.from(String(err)));
      done();
    });
  });
  return { port, child, exited, isRunning: () => running, output: () => out };
}

/**
 * Starts on `port` (or a free one) until `ready` resolves; retries when the port turns out to be
 * taken. A fixed port (a restart) may still be held by a dying process: it is retried longer.
 */
export async function launchServer(
  port: number | undefined,
  start: (port: number) => Running,
  ready: (proc: Running) => Promise<void>,
): Promise<Running> {
  let lastError: unknown;
  const attempts = port === undefined ? 5 : 50;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const p = port ?? (await freePort());
    const proc = start(p);
    try {
      await ready(proc);
      return proc;
    } catch (err) {
      lastError = err;
      proc.child.kill('SIGKILL');
      await proc.exited;
      if (!/address already in use/i.test(proc.output())) break;
      await sleep(100);
    }
  }
  throw lastError;
}

/** SIGTERM, then SIGKILL after 5 s; resolves when the process is gone. */
export async function terminate(proc: Running): Promise<void> {
  if (!proc.isRunning()) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5000);
  await proc.exited;
  clearTimeout(timer);
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

let netInstalled = false;

/** Kills every server still running when this process exits or is told to stop. */
function installSafetyNet(): void {
  if (netInstalled) return;
  netInstalled = true;
  const killAll = (): void => {
    for (const child of live) {
      try {
        child.kill('SIGKILL');
      } catch {
        // already gone
      }
    }
  };
  process.once('exit', killAll);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      killAll();
      process.kill(process.pid, signal); // the listener is gone now: default behaviour (exit)
    });
  }
}
