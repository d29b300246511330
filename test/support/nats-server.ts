import { mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { launchServer, sleep, spawnServer, terminate, type Running } from './server-process';

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

export async function startNats(opts: NatsServerOptions = {}): Promise<NatsServerHandle> {
  const dir = await mkdtemp(join(tmpdir(), 'keyward-nats-'));
  const args = opts.args ?? [];
  let proc: Running;
  try {
    proc = await launchServer(undefined, (p) => spawnNats(p, dir, args), waitUntilReady);
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
      proc = await launchServer(proc.port, (p) => spawnNats(p, dir, args), waitUntilReady);
    },
  };
}



function spawnNats(port: number, dir: string, args: readonly string[]): Running {
  return spawnServer(NATS_SERVER, ['-js', '-a', '127.0.0.1', '-p', String(port), '-sd', dir, ...args], port);
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





