import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Starts throwaway `nats-server` processes with JetStream for integration tests: 127.0.0.1 on a
 * free port, the JetStream store in a temp dir. `restart()` reuses the port and the store dir, so
 * streams, messages and durable consumers survive it (as a real outage would leave them).
 * Every process is SIGKILLed when the test process exits, whatever happens.
 */
export interface NatsServerOptions {
  /** Extra `nats-server` arguments. */
  args?: readonly string[];
}

export interface NatsServerHandle {
  readonly port: number;
  /** `nats://127.0.0.1:<port>` */
  readonly url: string;
  /** The JetStream store dir (`-sd`). */
  readonly dir: string;
  /** The current process id (changes on restart). */
  readonly pid: number;
  /** SIGTERM, wait for exit, remove the store dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash or outage would; keeps the store dir for `restart`. */
  kill(): Promise<void>;
  /** Starts again on the same port and store dir (stopping the running process first, if any). */
  restart(): Promise<void>;
}

const NATS_SERVER = process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server';
const READY_TIMEOUT_MS = 10_000;
const live = new Set<ChildProcess>();

export async function startNats(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  installSafetyNet();
  const dir = await mkdtemp(join(tmpdir(), 'keyward-nats-'));
  const args = opts.args ?? [];
  let proc: Running;
  try {
    proc = await launch(undefined, dir, args);
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
  let removed = false;
  return {
    get port() {
      return proc.port;
    },
    get url() {
      return `nats://127.0.0.1:${proc.port}`;
    },
    dir,
    get pid() {
      return proc.child.pid!;
    },
    async stop() {
      await terminate(proc);
      if (!removed) {
        removed = true;
        await rm(dir, { recursive: true, force: true });
      }
    },
    async kill() {
      if (!proc.isRunning()) return;
      proc.child.kill('SIGKILL');
      await proc.exited;
    },
    async restart() {
      if (removed) throw new Error('nats-server was stopped; start a new one');
      await terminate(proc);
      proc = await launch(proc.port, dir, args);
    },
  };
}

interface Running {
  readonly port: number;
  readonly child: ChildProcess;
  readonly exited: Promise<void>;
  isRunning(): boolean;
  output(): string;
}

/** Spawns on `port` (or a free one) and waits until it is ready; retries when the port is taken. */
async function launch(port: number | undefined, dir: string, args: readonly string[]): Promise<Running> {
  let lastError: unknown;
  // a fixed port (restart) may still be in TIME_WAIT or held by a dying process: retry longer
  const attempts = port === undefined ? 5 : 50;
  for (let attempt = 0; attempt < attempts; attempt++) {
    const p = port ?? (await freePort());
    const proc = spawnNats(p, dir, args);
    try {
      await waitUntilReady(proc);
      return proc;
    } catch (err) {
      lastError = err;
      proc.child.kill('SIGKILL');
      await proc.exited;
      if (!/address already in use/i.test(proc.output())) break;
      await sleep(100); // taken meanwhile: a new port, or the same one once it is released
    }
  }
  throw lastError;
}

function spawnNats(port: number, dir: string, args: readonly string[]): Running {
  const child = spawn(NATS_SERVER, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
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
 * Ready = the server logged "Server is ready" (JetStream, with its recovered streams, is
 * enabled before that) and answers a raw connection with its INFO line.
 */
async function waitUntilReady(proc: Running): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!proc.isRunning()) throw new Error(`nats-server exited during startup:\n${proc.output()}`);
    if (/Server is ready/.test(proc.output()) && (await sendsInfo(proc.port))) return;
    await sleep(20);
  }
  throw new Error(`nats-server not ready within ${READY_TIMEOUT_MS} ms:\n${proc.output()}`);
}

/** One raw connection; true when the server greets it with `INFO {...}`. */
function sendsInfo(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => finish(false));
    socket.on('error', () => finish(false));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) finish(reply.startsWith('INFO '));
    });
  });
}

async function terminate(proc: Running): Promise<void> {
  if (!proc.isRunning()) return;
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5000);
  await proc.exited;
  clearTimeout(timer);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

function sleep(ms: number): Promise<void> {
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
