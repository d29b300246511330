import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchServer, sleep, spawnServer, terminate, type Running } from './server-process';

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

export async function startRedis(opts: RedisServerOptions = {}): Promise<RedisServerHandle> {
    const dir = await mkdtemp(join(tmpdir(), 'keyward-redis-'));
  const args = ['--appendonly', opts.appendOnly ? 'yes' : 'no', ...(opts.args ?? [])];
  let proc: Running;
  try {
    proc = await launchServer(undefined, (p) => spawnRedis(p, dir, args), waitUntilPong);
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
      proc = await launchServer(proc.port, (p) => spawnRedis(p, dir, args), waitUntilPong);
    },
  };
}



function spawnRedis(port: number, dir: string, args: readonly string[]): Running {
  const base = ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--daemonize', 'no'];
  return spawnServer('redis-server', [...base, ...args], port);
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





