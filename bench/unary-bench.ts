import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { ValidateKeyRequest } from '../src/gen/keyward/v1/key_service.pb';
import { keyServicePb } from './dist-modules';
import { createKey, expectValid, validationRequest, VALIDATE_PATH, type BenchContext } from './context';
import { writeFrameFile, grpcFrame } from './grpc-frame';
import { readRequestLog } from './h2load';
import { rssMiB, sleep } from './processes';
import { interleavedFresh } from './interleaved';
import { commandsPerRequest } from './redis-commandstats';
import { MB, THROUGHPUT_HEADER, f2, flag, int, pairedRatio, ratio, throughputRow } from './report-format';
import type { LatencyRun, ThroughputRun } from './results';
import { defineScenario, targetList } from './scenario';
import { startFloor, startKeyward, type KeywardProcess, type ServerProcess } from './server-processes';
import { quantile } from './stats';
import { DISTURBED_CORES, measure, undisturbed, type MeasuredRun } from './throughput';

/**
 * Unary ValidateKey under h2load, all with one pre-encoded request frame and the same
 * connection and stream concurrency:
 *   (a) floor: a bare grpc-js server answering a fixed response at the same path;
 *   (b) keyward, cache hits (embedded store, the key created through the admin API);
 *   (c) keyward, cache off (KEYWARD_CACHE_MAX_ENTRIES=0) on Redis: one HGETALL per call;
 *   (e) keyward, cache hits, at half of (b)'s best rate: latency percentiles from h2load's
 *       per-request log; the floor at the same rate, for reference.
 * (a), (b) and (c) are repeated `reps` times, interleaved, with new processes in every rep;
 * ratios are the median over mirrored rep pairs (`pairedRatio`).
 */
export interface UnaryResults {
  floor: ThroughputRun;
  cached: ThroughputRun;
  cacheOff: ThroughputRun;
  /** HGETALL calls Redis ran per measured request of the best cache-off run (warm-up included: at least 1). */
  cacheOffReadsPerRequest: number;
  /** The floor and keyward at the same rate: half of keyward's best cached rate. */
  floorLatency: LatencyRun;
  latency: LatencyRun;
  /** Node's own node:http2 server without grpc-js (floor-server.ts http2) at the same rate. */
  http2Latency: LatencyRun;
  idleEmbeddedMiB: number;
}

export async function benchUnary(ctx: BenchContext): Promise<UnaryResults> {
  const servers: ServerProcess[] = [];
  let idleEmbeddedMiB = NaN;
  const reads = commandsPerRequest(ctx.redisUrl, ['hgetall'], 'cache-off validations: not a read per call');
  const cachedFile = join(ctx.outDir, 'validate-cached.bin');
  const cacheOffFile = join(ctx.outDir, 'validate-cache-off.bin');
  try {
    // every rep measures new processes (interleavedFresh): one process's luck weighs on one rep
    const runs = await interleavedFresh(ctx, 'unary', async (_rep, track) => {
      const floor = track(await startFloor('unary'));
      const cached = track(await startKeyward('keyward-cached'));
      await sleep(1_000);
      if (Number.isNaN(idleEmbeddedMiB)) idleEmbeddedMiB = rssMiB(cached.pid);
      const cacheOff = track(await startKeyward('keyward-cache-off', { env: { KEYWARD_REDIS_URL: ctx.redisUrl, KEYWARD_CACHE_MAX_ENTRIES: '0' } }));
      const p = await prepareUnary(cached, cachedFile);
      const off = await prepareUnary(cacheOff, cacheOffFile);
      return {
        contenders: [
          { key: 'floor', name: 'unary floor (bare grpc-js)', serverPid: floor.pid, url: url(floor), dataFile: cachedFile, expectedResponseBytes: FLOOR_ANSWER_BYTES },
          { key: 'cached', name: 'keyward ValidateKey, cache hits', serverPid: cached.pid, url: url(cached), dataFile: cachedFile, expectedResponseBytes: p.bytes },
          {
            key: 'cacheOff',
            name: 'keyward ValidateKey, cache off (Redis)',
            serverPid: cacheOff.pid,
            helper: { pid: ctx.redisPid, name: 'redis' },
            url: url(cacheOff),
            dataFile: cacheOffFile,
            expectedResponseBytes: off.bytes,
            before: reads.before,
            after: reads.after,
          },
        ],
        finish: async () => {
          // still valid after the load (nothing was revoked or evicted into an error)
          await expectValid(cached, p.req);
          await expectValid(cacheOff, off.req);
        },
      };
    });

    const http2 = await startFloor('http2');
    servers.push(http2);
    const floor = await startFloor('unary');
    servers.push(floor);
    const cached = await startKeyward('keyward-cached');
    servers.push(cached);
    const p = await prepareUnary(cached, cachedFile);
    const rate = Math.round(runs.cached.reqPerSec / 2);
    const latency: LatencyRun[] = [];
    for (const [server, name, bytes] of [
      [http2, 'node:http2 (no grpc-js)', FLOOR_ANSWER_BYTES],
      [floor, 'floor', FLOOR_ANSWER_BYTES],
      [cached, 'keyward-cached', p.bytes],
    ] as const) {
      ctx.log(`latency of ${name} at ${rate} req/s (half of keyward's best cached rate)`);
      const l = await latencyAtRate(ctx, server, name, cachedFile, rate, bytes);
      latency.push(l);
      ctx.log(`  p50 ${l.p50Ms.toFixed(3)} ms, p99 ${l.p99Ms.toFixed(3)} ms, p99.9 ${l.p999Ms.toFixed(3)} ms at ${l.achievedRps.toFixed(0)} req/s`);
    }
    const cacheOffReadsPerRequest = reads.perRequest(runs.cacheOff.reqPerSec);
    return {
      floor: runs.floor,
      cached: runs.cached,
      cacheOff: runs.cacheOff,
      cacheOffReadsPerRequest,
      http2Latency: latency[0],
      floorLatency: latency[1],
      latency: latency[2],
      idleEmbeddedMiB,
    };
  } finally {
    await Promise.all(servers.map((x) => x.stop()));
  }
}

/** Creates a key on `kw`, writes its ValidateKey request frame to `file`, and checks it answers VALID. */
async function prepareUnary(kw: KeywardProcess, file: string): Promise<{ req: ValidateKeyRequest; bytes: number }> {
  const req = validationRequest(await createKey(kw, 'bench'), 'bench');
  writeFrameFile(file, grpcFrame(keyServicePb.ValidateKeyRequest.encode(req).finish()));
  const answer = await expectValid(kw, req);
  return { req, bytes: answer.frameBytes };
}

/** floor-server.ts answers a 4-byte message: 5 + 4 bytes on the wire. */
export const FLOOR_ANSWER_BYTES = 5 + 4;

export function url(server: ServerProcess | KeywardProcess): string {
  return `http://${server.addr}${VALIDATE_PATH}`;
}

/**
 * Latency at a fixed request rate. h2load's --rps timer ticks every 10 ms at the most, so each
 * connection sends its requests in bursts of rate/100; the bench opens LATENCY_CONNECTIONS
 * connections 1 ms apart (-r 1 --rate-period 1ms), which spreads the bursts evenly over the
 * tick: about rate/1000 requests every millisecond. The first `warmupS` seconds of the
 * per-request log are dropped.
 */
const LATENCY_CONNECTIONS = 10;

async function latencyAtRate(
  ctx: BenchContext,
  server: ServerProcess,
  name: string,
  dataFile: string,
  rate: number,
  expectedResponseBytes: number,
): Promise<LatencyRun> {
  const s = ctx.settings;
  const clients = LATENCY_CONNECTIONS;
  const perClient = Math.max(1, Math.round(rate / clients));
  const logFile = join(ctx.outDir, `latency-${name.replace(/[^\w-]+/g, '_')}.tsv`);
  const attempt = async (): Promise<{ run: MeasuredRun; log: ReturnType<typeof readRequestLog> }> => {
    rmSync(logFile, { force: true }); // h2load appends to an existing log
    const run = await measure(ctx, {
      name: `latency ${name}`,
      serverPid: server.pid,
      expectedResponseBytes,
      h2load: {
        url: url(server),
        dataFile,
        clients,
        streams: s.h2loadStreams,
        rpsPerClient: perClient,
        logFile,
        fixed: { requests: perClient * clients * (s.warmupS + s.durationS), connectPeriod: '1ms' },
      },
    });
    return { run, log: readRequestLog(logFile, s.warmupS) };
  };
  const { run, log, disturbed } = await undisturbed(ctx, `latency ${name}`, attempt, (r) => r.run.otherCores);
  const d = log.durationsMs;
  return {
    name,
    targetRps: perClient * clients,
    achievedRps: log.spanS > 0 ? d.length / log.spanS : 0,
    samples: d.length,
    p50Ms: quantile(d, 0.5),
    p99Ms: quantile(d, 0.99),
    p999Ms: quantile(d, 0.999),
    maxMs: quantile(d, 1),
    failed: log.failed,
    serverCores: run.serverCores,
    h2loadCores: run.h2.h2loadCores,
    otherCores: run.otherCores,
    disturbed,
    command: run.h2.command,
  };
}

export const unaryScenario = defineScenario<UnaryResults>({
  name: 'unary',
  summary: 'unary ValidateKey vs the bare grpc-js floor: cache hits, cache off (Redis read per call), latency at half load, idle RSS',
  run: benchUnary,
  targets(u) {
    const t = targetList();
    const cached = pairedRatio(u.cached, u.floor);
    t.add('cached-throughput', 'cached ValidateKey throughput vs unary floor', '≥ 0.85×', ratio(cached), cached >= 0.85);
    t.add('latency-p99', 'p99 latency of cached ValidateKey at half load', '≤ 2 ms', `${u.latency.p99Ms.toFixed(3)} ms`, u.latency.p99Ms <= 2);
    const off = pairedRatio(u.cacheOff, u.floor);
    t.add('cache-off-throughput', 'cache-off ValidateKey (Redis read per call) vs unary floor', '≥ 0.5×', ratio(off), off >= 0.5);
    return t.list;
  },
  render(u, s) {
    const L: string[] = [];
    L.push('### Unary ValidateKey (h2load)');
    L.push('');
    L.push(
      'CPU columns are cores used during the measured window (1.00 = one core busy): the server process, h2load, and everything else on the machine. ' +
        `A run during which other processes used more than ${DISTURBED_CORES} cores is repeated (up to BENCH_MAX_ATTEMPTS, default 2, attempts); † marks a figure whose best attempt was still disturbed.`,
    );
    L.push('');
    L.push(...THROUGHPUT_HEADER);
    L.push(throughputRow(u.floor, undefined));
    L.push(throughputRow(u.cached, u.floor));
    L.push(throughputRow(u.cacheOff, u.floor));
    L.push('');
    L.push(
      `Answers were checked: one grpc-js call before and after the load must answer \`VALIDATION_CODE_VALID\`; every h2load response was 2xx ` +
        `(${int(u.cached.status2xx)} for the best cached run, ${u.cached.failed} failed) and carried ${u.cached.dataBytesPerRequest.toFixed(1)} body bytes on average ` +
        `where a real VALID answer is ${u.cached.expectedResponseBytes} (a gRPC error would carry none). ` +
        `With the cache off Redis ran ${u.cacheOffReadsPerRequest.toFixed(2)} HGETALLs per measured request in the best run (INFO commandstats; warm-up included: at least 1), so every validation read Redis. ` +
        `RSS of the cached (embedded store) keyward 1 s after start: ${(u.idleEmbeddedMiB / MB).toFixed(1)} MB (${u.idleEmbeddedMiB.toFixed(1)} MiB).`,
    );
    L.push('');
    const lat = u.latency;
    L.push('### Latency of cached ValidateKey at half load');
    L.push('');
    L.push(
      `${int(lat.targetRps)} req/s (half of the best cached rate), from ${LATENCY_CONNECTIONS} connections opened 1 ms apart, each with h2load \`--rps\` ${int(lat.targetRps / LATENCY_CONNECTIONS)} ` +
        `(h2load's rate timer ticks every 10 ms, so the staggered connections spread their bursts to about ${(lat.targetRps / 1000).toFixed(1)} requests per millisecond). ` +
        `Percentiles from h2load's per-request \`--log-file\` after ${s.warmupS} s of warm-up, as seen by the load generator (request sent → last byte of the answer). ` +
        'The floor at the same rate shows what grpc-js alone costs on this machine, and Node\'s own `node:http2` server (no grpc-js, the same answer bytes) what is left without grpc-js: ' +
        'the tail under this load comes from the Node process (V8 garbage-collection pauses hold every answer in flight), not from grpc-js or keyward.',
    );
    L.push('');
    L.push('| server | achieved | requests | p50 | p99 | p99.9 | max | server cores | other cores |');
    L.push('| --- | --- | --- | --- | --- | --- | --- | --- | --- |');
    for (const l of [u.http2Latency, u.floorLatency, lat]) {
      L.push(
        `| ${l.name}${flag(l.disturbed)} | ${int(l.achievedRps)} req/s | ${int(l.samples)} | ${l.p50Ms.toFixed(3)} ms | ${l.p99Ms.toFixed(3)} ms | ${l.p999Ms.toFixed(3)} ms | ${l.maxMs.toFixed(3)} ms | ${f2(l.serverCores)} | ${f2(l.otherCores)} |`,
      );
    }
    return L;
  },
});
