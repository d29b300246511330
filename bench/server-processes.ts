import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { credentials, Metadata } from '@grpc/grpc-js';
import type { KeyAdminServiceClient } from '../src/gen/keyward/v1/key_admin_service.pb';
import type { KeyServiceClient } from '../src/gen/keyward/v1/key_service.pb';
import { adminPb, KEYWARD_BIN, keyServicePb } from './dist-modules';
import { BENCH_DIST, exited, spawnTracked, stopChild } from './processes';

/** A measured server running as its own process on 127.0.0.1. */
export interface ServerProcess {
  readonly name: string;
  readonly pid: number;
  /** host:port */
  readonly addr: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

export interface KeywardProcess extends ServerProcess {
  readonly keys: KeyServiceClient;
  readonly admin: KeyAdminServiceClient;
  /** Metadata carrying the bootstrap admin token. */
  readonly root: Metadata;
  /** host:port of its Prometheus /metrics listener. */
  readonly metricsAddr?: string;
}

export const ADMIN_TOKEN = 'bench-bootstrap-admin-token-0123456789abcdef';
const START_TIMEOUT_MS = 20_000;

/**
 * Spawns a server and waits for the JSON line on stdout for which `ready` returns an address.
 * Keeps draining stdout and stderr (a full pipe would block the server).
 */
async function spawnServer(
  name: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  ready: (line: Record<string, unknown>) => string | undefined,
): Promise<{ child: ChildProcess; addr: string }> {
  const child = spawnTracked(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const keep = (l: string): void => {
    tail.push(l);
    if (tail.length > 50) tail.shift();
  };
  createInterface({ input: child.stderr! }).on('line', keep);
  const addr = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start within ${START_TIMEOUT_MS} ms:\n${tail.join('\n')}`)), START_TIMEOUT_MS);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      keep(line);
      try {
        const a = ready(JSON.parse(line) as Record<string, unknown>);
        if (a !== undefined) {
          clearTimeout(timer);
          resolve(a);
        }
      } catch {
        // not JSON
      }
    });
    void exited(child).then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before it was ready:\n${tail.join('\n')}`));
    });
  }).catch(async (err: unknown) => {
    await stopChild(child, 'SIGKILL');
    throw err;
  });
  return { child, addr };
}

/** A bare grpc-js floor server (see floor-server.ts); `nodeArgs` (e.g. --trace-gc) for investigations. */
export async function startFloor(mode: 'unary' | 'stream' | 'http2', nodeArgs: readonly string[] = []): Promise<ServerProcess> {
  const name = `floor-${mode}`;
  const { child, addr } = await spawnServer(
    name,
    process.execPath,
    [...nodeArgs, join(BENCH_DIST, 'floor-server.js'), mode],
    { PATH: process.env.PATH ?? '' },
    (l) => (typeof l.port === 'number' ? `127.0.0.1:${l.port}` : undefined),
  );
  return { name, pid: child.pid!, addr, child, stop: () => stopChild(child) };
}

/**
 * The OTLP/HTTP sink (see otlp-sink.ts): accepts POST /v1/traces, counts the spans and
 * discards them; GET /stats answers what it got.
 */
export interface OtlpSink extends ServerProcess {
  /** http://127.0.0.1:port, for OTEL_EXPORTER_OTLP_ENDPOINT. */
  readonly endpoint: string;
  stats(): Promise<OtlpSinkStats>;
}

export interface OtlpSinkStats {
  requests: number;
  spans: number;
  bytes: number;
  rejected: number;
  /** Spans by name. */
  names: Record<string, number>;
}

export async function startOtlpSink(): Promise<OtlpSink> {
  const name = 'otlp-sink';
  const { child, addr } = await spawnServer(
    name,
    process.execPath,
    [join(BENCH_DIST, 'otlp-sink.js')],
    { PATH: process.env.PATH ?? '' },
    (l) => (typeof l.port === 'number' ? `127.0.0.1:${l.port}` : undefined),
  );
  const endpoint = `http://${addr}`;
  return {
    name,
    pid: child.pid!,
    addr,
    child,
    endpoint,
    async stats() {
      const res = await fetch(`${endpoint}/stats`);
      if (!res.ok) throw new Error(`otlp-sink /stats answered ${res.status}`);
      return (await res.json()) as OtlpSinkStats;
    },
    stop: () => stopChild(child),
  };
}

export interface KeywardOptions {
  /** Extra KEYWARD_* settings. */
  env?: Record<string, string>;
  /** When set, keyward runs with `node --cpu-prof` and writes its profile into this directory. */
  cpuProfDir?: string;
  /** Extra node options (e.g. --trace-gc), for investigations. */
  nodeArgs?: string[];
  /** Another build's bin/keyward.js, to compare two builds (default: this checkout's). */
  bin?: string;
}

/** `node bin/keyward.js serve` on 127.0.0.1:0, with the bench's bootstrap admin token. */
export async function startKeyward(name: string, opts: KeywardOptions = {}): Promise<KeywardProcess> {
  const home = mkdtempSync(join(tmpdir(), 'keyward-bench-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '',
    HOME: home,
    KEYWARD_GRPC_ADDR: '127.0.0.1:0',
    KEYWARD_HEALTH_ADDR: '127.0.0.1:0',
    KEYWARD_METRICS_ADDR: '127.0.0.1:0', // several sidecars at once must not share the default port
    KEYWARD_ADMIN_TOKEN: ADMIN_TOKEN,
    KEYWARD_LOG_LEVEL: 'info',
    KEYWARD_SHUTDOWN_TIMEOUT: '2s',
    ...opts.env,
  };
  // (--cpu-prof is not allowed in NODE_OPTIONS: it goes on the command line)
  const nodeArgs = [
    ...(opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfDir}`, `--cpu-prof-name=${name}.cpuprofile`] : []),
    ...(opts.nodeArgs ?? []),
  ];
  let started;
  let metricsAddr: string | undefined;
  try {
    started = await spawnServer(name, process.execPath, [...nodeArgs, opts.bin ?? KEYWARD_BIN, 'serve'], env, (l) => {
      if (l.msg !== 'keyward listening' || typeof l.grpcAddr !== 'string') return undefined;
      if (typeof l.metricsAddr === 'string') metricsAddr = l.metricsAddr;
      return l.grpcAddr;
    });
  } catch (err) {
    rmSync(home, { recursive: true, force: true });
    throw err;
  }
  const { child, addr } = started;
  const keys = new keyServicePb.KeyServiceClient(addr, credentials.createInsecure());
  const admin = new adminPb.KeyAdminServiceClient(addr, credentials.createInsecure());
  const root = new Metadata();
  root.set('authorization', `Bearer ${ADMIN_TOKEN}`);
  return {
    name,
    pid: child.pid!,
    addr,
    child,
    keys,
    admin,
    root,
    metricsAddr,
    async stop() {
      keys.close();
      admin.close();
      // SIGTERM: keyward drains and exits 0, which also makes --cpu-prof write its profile
      await stopChild(child, 'SIGTERM', 15_000);
      rmSync(home, { recursive: true, force: true });
    },
  };
}

/** Promisified unary call with a deadline. */
export function unary<Req, Res>(
  method: (req: Req, md: Metadata, opts: { deadline: Date }, cb: (err: Error | null, res: Res) => void) => unknown,
  self: unknown,
  req: Req,
  md: Metadata = new Metadata(),
  timeoutMs = 30_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method.call(self, req, md, { deadline: new Date(Date.now() + timeoutMs) }, (err, res) => (err ? reject(err) : resolve(res)));
  });
}
