import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { BENCH_DIST, CpuMeter, exited, forkTracked, stopChild } from './processes';
import type { StreamClientResult } from './stream-client';

/**
 * Drives ValidateKeyStream with `clients` Node client processes (stream-client.ts), each with
 * one stream and `window` requests in flight, and sums their answer rates.
 */
export interface StreamLoadOptions {
  addr: string;
  mode: 'keyward' | 'floor';
  clients: number;
  window: number;
  warmupS: number;
  durationS: number;
  /** One encoded ValidateKeyStreamRequest (no gRPC framing). */
  request: Uint8Array;
  /** The server's pid, to measure its CPU during the measured window. */
  serverPid: number;
}

export interface StreamLoadResult {
  messagesPerSec: number;
  messages: number;
  clients: number;
  window: number;
  /** Cores used by all client processes together, and by the server, during the measurement. */
  clientCores: number;
  serverCores: number;
  checked: number;
  bad: number;
  firstBad?: string;
}

export async function runStreamLoad(o: StreamLoadOptions): Promise<StreamLoadResult> {
  const args = [o.addr, o.mode, String(o.window), String(o.warmupS * 1000), String(o.durationS * 1000), Buffer.from(o.request).toString('base64')];
  const children: ChildProcess[] = [];
  try {
    const ready: Promise<void>[] = [];
    const results: Promise<StreamClientResult>[] = [];
    for (let i = 0; i < o.clients; i++) {
      const child = forkTracked(join(BENCH_DIST, 'stream-client.js'), args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      children.push(child);
      const failed = exited(child).then((code) => {
        throw new Error(`stream client ${i} exited with ${code} before reporting`);
      });
      ready.push(Promise.race([waitFor(child, 'ready').then(() => undefined), failed]));
      results.push(Promise.race([waitFor(child, 'result') as Promise<StreamClientResult>, failed]));
      // once reported, its exit is expected
      results[i].catch(() => {});
      failed.catch(() => {});
    }
    await Promise.all(ready);
    const meter = new CpuMeter(o.serverPid);
    for (const c of children) c.send({ type: 'go' });
    const measuring = new Promise<{ cores: number }>((resolve) => {
      setTimeout(() => {
        meter.start();
        setTimeout(() => resolve(meter.stop()), o.durationS * 1000);
      }, o.warmupS * 1000);
    });
    const all = await Promise.all(results);
    const server = await measuring;
    let firstBad: string | undefined;
    for (const r of all) firstBad ??= r.firstBad;
    return {
      messagesPerSec: all.reduce((s, r) => s + r.messages / r.seconds, 0),
      messages: all.reduce((s, r) => s + r.messages, 0),
      clients: o.clients,
      window: o.window,
      clientCores: all.reduce((s, r) => s + r.cpuSeconds / r.seconds, 0),
      serverCores: server.cores,
      checked: all.reduce((s, r) => s + r.checked, 0),
      bad: all.reduce((s, r) => s + r.bad, 0),
      ...(firstBad !== undefined && { firstBad }),
    };
  } finally {
    await Promise.all(children.map((c) => stopChild(c, 'SIGTERM', 2_000)));
  }
}

function waitFor(child: ChildProcess, type: string): Promise<unknown> {
  return new Promise((resolve) => {
    const onMessage = (msg: { type?: string }): void => {
      if (msg?.type === type) {
        child.off('message', onMessage);
        resolve(msg);
      }
    };
    child.on('message', onMessage);
  });
}
