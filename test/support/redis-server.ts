import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection, createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Starts throwaway `redis-server` processes (from PATH) for integration tests: 127.0.0.1 on a
 * free port, a temp dir, no RDB snapshots, AOF only on request. Every process is SIGKILLed when
 * the test process exits, whatever happens.
 */
export interface RedisServerOptions {
  /** Enable the append-only file (for restart-with-data tests). Default false. */
  appendOnly?: boolean;
  /** Extra `redis-server` arguments, e.g. ['--maxmemory', '10mb']. */
  args?: readonly string[];
}

export interface RedisServerHandle {
  readonly port: number;
  readonly url: string;
  readonly dir: string;
  /** The current process id (changes on restart). */
  readonly pid: number;
  /** SIGTERM, wait for exit, remove the temp dir. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL, as a crash or outage would; keeps the dir for `restart`. */
  kill(): Promise<void>;
  /** Starts again on the same port and dir (stopping the running process first, if any). */
  restart(): Promise<void>;
}

const READY_TIMEOUT_MS = 10_000;
const live = new Set<ChildProcess>();

export async function startRedis(opts: RedisServerOptions = {}): Promise<RedisServerHandle> {
  installSafetyNet();
  const dir = await mkdtemp(join(tmpdir(), 'keyward-redis-'));
  const args = ['--appendonly', opts.appendOnly ? 'yes' : 'no', ...(opts.args ?? [])];
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
      return `redis://127.0.0.1:${proc.port}`;
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
      proc.child.kill('SIGKILL');
      await proc.exited;
    },
    async restart() {
      if (removed) throw new Error('redis-server was stopped; start a new one');
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

/** Spawns on `port` (or a free one) and waits for PING; retries when the port is taken. */
async function launch(port: number | undefined, dir: string, args: readonly string[]): Promise<Running> {
  let lastError: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const p = port ?? (await freePort());
    const proc = spawnRedis(p, dir, args);
    try {
      await waitUntilPong(proc);
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

function spawnRedis(port: number, dir: string, args: readonly string[]): Running {
  const child = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no', ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  live.add(child);
  let out = '';
  const keep = (chunk: Buffer): void => {
    out = (out + chunk.toString()).slice(-8192);
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

async function waitUntilPong(proc: Running): Promise<void> {
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (!proc.isRunning()) throw new Error(`redis-server exited during startup:\n${proc.output()}`);
    if (await pings(proc.port)) return;
    await sleep(20);
  }
  throw new Error(`redis-server did not answer PING within ${READY_TIMEOUT_MS} ms:\n${proc.output()}`);
}

/** One raw PING; true on +PONG (not on -LOADING or a refused connection). */
function pings(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    let reply = '';
    const finish = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => finish(false));
    socket.on('error', () => finish(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (d) => {
      reply += d.toString();
      if (reply.includes('\r\n')) finish(reply.startsWith('+PONG'));
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
