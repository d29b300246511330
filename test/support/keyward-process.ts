import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { credentials, Metadata } from '@grpc/grpc-js';
import { KeyAdminServiceClient } from '../../src/gen/keyward/v1/key_admin_service.pb';
import { KeyServiceClient } from '../../src/gen/keyward/v1/key_service.pb';

export const ROOT = join(__dirname, '../..');
export const BIN = join(ROOT, 'bin/keyward.js');
export const ADMIN_TOKEN = 'e2e-bootstrap-token-0123456789abcdefghijklmnop';

export interface KeywardProcess {
  readonly grpcAddr: string;
  readonly healthAddr: string;
  /** The bound /metrics address (`host:port`), when the sidecar serves metrics. */
  readonly metricsAddr?: string;
  readonly child: ChildProcess;
  /** Every JSON log line printed so far. */
  readonly logs: Record<string, unknown>[];
  readonly stderr: string[];
  readonly keys: KeyServiceClient;
  readonly admin: KeyAdminServiceClient;
  /** Metadata with the bootstrap token. */
  readonly root: Metadata;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
}

export function bearer(token: string): Metadata {
  const md = new Metadata();
  md.set('authorization', `Bearer ${token}`);
  return md;
}

/**
 * Starts the built `keyward serve` (run `npm run build` first; `npm test` does) on port 0 for
 * both listeners, and reads the bound addresses from its "keyward listening" log line.
 */
export async function startKeyward(env: Record<string, string> = {}): Promise<KeywardProcess> {
  const home = mkdtempSync(join(tmpdir(), 'keyward-e2e-'));
  const child = spawn(process.execPath, [BIN, 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: home,
      KEYWARD_GRPC_ADDR: '127.0.0.1:0',
      KEYWARD_HEALTH_ADDR: '127.0.0.1:0',
      // several sidecars run at once in the suite: never the fixed default port
      KEYWARD_METRICS_ADDR: '127.0.0.1:0',
      KEYWARD_ADMIN_TOKEN: ADMIN_TOKEN,
      KEYWARD_LOG_LEVEL: 'info',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, unknown>[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stderr! }).on('line', (l) => stderr.push(l));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const listening = new Promise<Record<string, unknown>>((resolve, reject) => {
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'keyward listening') resolve(entry);
      } catch {
        logs.push({ raw: line });
      }
    });
    exited.then((code) => reject(new Error(`keyward exited with ${code} before listening: ${stderr.join('\n')} ${JSON.stringify(logs)}`)));
    setTimeout(() => reject(new Error('keyward did not start within 15 s')), 15_000).unref();
  });
  let started: Record<string, unknown>;
  try {
    started = await listening;
  } catch (err) {
    child.kill('SIGKILL');
    rmSync(home, { recursive: true, force: true });
    throw err;
  }
  const grpcAddr = String(started.grpcAddr);
  const keys = new KeyServiceClient(grpcAddr, credentials.createInsecure());
  const admin = new KeyAdminServiceClient(grpcAddr, credentials.createInsecure());
  return {
    grpcAddr,
    healthAddr: String(started.healthAddr),
    metricsAddr: typeof started.metricsAddr === 'string' ? started.metricsAddr : undefined,
    child,
    logs,
    stderr,
    keys,
    admin,
    root: bearer(ADMIN_TOKEN),
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      keys.close();
      admin.close();
      if (!child.killed && child.exitCode === null && child.signalCode === null) child.kill(signal);
      const code = await exited;
      rmSync(home, { recursive: true, force: true });
      return code;
    },
  };
}

export { call } from '../../src/cli/admin-client';
