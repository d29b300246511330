import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { keyServicePb } from './dist-modules';
import { createKey, expectValid, validationRequest, VALIDATE_PATH, type BenchContext } from './context';
import { writeFrameFile, grpcFrame } from './grpc-frame';
import { readRequestLog } from './h2load';
import { rssMiB, sleep } from './processes';
import type { LatencyRun, ThroughputRun } from './results';
import { startFloor, startKeyward, type KeywardProcess, type ServerProcess } from './server-processes';
import { quantile } from './stats';
import { measure, undisturbed, type MeasuredRun, type MeasureOptions } from './throughput';

function measureUndisturbed(ctx: BenchContext, o: MeasureOptions): Promise<MeasuredRun & { disturbed: boolean }> {
  return undisturbed(ctx, o.name, () => measure(ctx, o), (r) => r.otherCores);
}

/**
 * Unary ValidateKey under h2load, all with one pre-encoded request frame and the same
 * connection and stream concurrency:
 *   (a) floor: a bare grpc-js server answering a fixed response at the same path;
 *   (b) keyward, cache hits (embedded store, the key created through the admin API);
 *   (c) keyward, cache off (KEYWARD_CACHE_MAX_ENTRIES=0) on Redis: one HGETALL per call;
 *   (e) keyward, cache hits, at half of (b)'s best rate: latency percentiles from h2load's
 *       per-request log; the floor at the same rate, for reference.
 * (a), (b) and (c) are repeated `reps` times, interleaved; the best run of each counts.
 */
export interface UnaryResults {
  floor: ThroughputRun;
  cached: ThroughputRun;
  cacheOff: ThroughputRun;
  /** The floor and keyward at the same rate: half of keyward's best cached rate. */
  floorLatency: LatencyRun;
  latency: LatencyRun;
  idleEmbeddedMiB: number;
}

export async function benchUnary(ctx: BenchContext): Promise<UnaryResults> {
  const s = ctx.settings;
  const servers: ServerProcess[] = [];
  try {
    const floor = await startFloor('unary');
    servers.push(floor);
    const cached = await startKeyward('keyward-cached');
    servers.push(cached);
    await sleep(1_000);
    const idleEmbeddedMiB = rssMiB(cached.pid);
    const cacheOff = await startKeyward('keyward-cache-off', {
      env: { KEYWARD_REDIS_URL: ctx.redisUrl, KEYWARD_CACHE_MAX_ENTRIES: '0' },
    });
    servers.push(cacheOff);

    const cachedReq = validationRequest(await createKey(cached, 'bench'), 'bench');
    const cacheOffReq = validationRequest(await createKey(cacheOff, 'bench'), 'bench');
    const cachedFile = join(ctx.outDir, 'validate-cached.bin');
    const cacheOffFile = join(ctx.outDir, 'validate-cache-off.bin');
    writeFrameFile(cachedFile, grpcFrame(keyServicePb.ValidateKeyRequest.encode(cachedReq).finish()));
    writeFrameFile(cacheOffFile, grpcFrame(keyServicePb.ValidateKeyRequest.encode(cacheOffReq).finish()));
    const cachedAnswer = await expectValid(cached, cachedReq);
    const cacheOffAnswer = await expectValid(cacheOff, cacheOffReq);
    const floorAnswerBytes = 5 + 4; // floor-server.ts answers a 4-byte message

    const common = { clients: s.h2loadClients, streams: s.h2loadStreams };
    const runs: Record<'floor' | 'cached' | 'cacheOff', (MeasuredRun & { disturbed: boolean })[]> = { floor: [], cached: [], cacheOff: [] };
    for (let rep = 1; rep <= s.reps; rep++) {
      ctx.log(`unary rep ${rep}/${s.reps}: floor`);
      runs.floor.push(
        await measureUndisturbed(ctx, {
          name: 'floor',
          serverPid: floor.pid,
          expectedResponseBytes: floorAnswerBytes,
          h2load: { ...common, url: url(floor), dataFile: cachedFile },
        }),
      );
      ctx.log(`  ${runs.floor[rep - 1].h2.reqPerSec.toFixed(0)} req/s`);
      ctx.log(`unary rep ${rep}/${s.reps}: keyward, cache hits`);
      runs.cached.push(
        await measureUndisturbed(ctx, {
          name: 'keyward cached',
          serverPid: cached.pid,
          expectedResponseBytes: cachedAnswer.frameBytes,
          h2load: { ...common, url: url(cached), dataFile: cachedFile },
        }),
      );
      ctx.log(`  ${runs.cached[rep - 1].h2.reqPerSec.toFixed(0)} req/s`);
      ctx.log(`unary rep ${rep}/${s.reps}: keyward, cache off (Redis read per call)`);
      runs.cacheOff.push(
        await measureUndisturbed(ctx, {
          name: 'keyward cache off',
          serverPid: cacheOff.pid,
          helperPid: ctx.redisPid,
          expectedResponseBytes: cacheOffAnswer.frameBytes,
          h2load: { ...common, url: url(cacheOff), dataFile: cacheOffFile },
        }),
      );
      ctx.log(`  ${runs.cacheOff[rep - 1].h2.reqPerSec.toFixed(0)} req/s`);
    }
    // still valid after the load (nothing was revoked or evicted into an error)
    await expectValid(cached, cachedReq);
    await expectValid(cacheOff, cacheOffReq);

    const floorRun = best('unary floor (bare grpc-js)', runs.floor, floorAnswerBytes);
    const cachedRun = best('keyward ValidateKey, cache hits', runs.cached, cachedAnswer.frameBytes);
    const cacheOffRun = best('keyward ValidateKey, cache off (Redis)', runs.cacheOff, cacheOffAnswer.frameBytes, true);

    const rate = Math.round(cachedRun.reqPerSec / 2);
    const latency: LatencyRun[] = [];
    for (const [server, name, bytes] of [
      [floor, 'floor', floorAnswerBytes],
      [cached, 'keyward-cached', cachedAnswer.frameBytes],
    ] as const) {
      ctx.log(`latency of ${name} at ${rate} req/s (half of keyward's best cached rate)`);
      const l = await latencyAtRate(ctx, server, name, cachedFile, rate, bytes);
      latency.push(l);
      ctx.log(`  p50 ${l.p50Ms.toFixed(3)} ms, p99 ${l.p99Ms.toFixed(3)} ms, p99.9 ${l.p999Ms.toFixed(3)} ms at ${l.achievedRps.toFixed(0)} req/s`);
    }
    return { floor: floorRun, cached: cachedRun, cacheOff: cacheOffRun, floorLatency: latency[0], latency: latency[1], idleEmbeddedMiB };
  } finally {
    await Promise.all(servers.map((x) => x.stop()));
  }
}

function url(server: ServerProcess | KeywardProcess): string {
  return `http://${server.addr}${VALIDATE_PATH}`;
}

function best(name: string, runs: (MeasuredRun & { disturbed: boolean })[], expectedResponseBytes: number, withRedis = false): ThroughputRun {
  const top = runs.reduce((a, b) => (b.h2.reqPerSec > a.h2.reqPerSec ? b : a));
  return {
    name,
    reqPerSec: top.h2.reqPerSec,
    allRuns: runs.map((r) => r.h2.reqPerSec),
    meanMs: top.h2.meanMs,
    succeeded: top.h2.succeeded,
    status2xx: top.h2.status2xx,
    failed: top.h2.failed + top.h2.errored + top.h2.timeout,
    dataBytesPerRequest: top.dataBytesPerRequest,
    expectedResponseBytes,
    serverCores: top.serverCores,
    ...(withRedis && { redisCores: top.helperCores }),
    h2loadCores: top.h2.h2loadCores,
    otherCores: top.otherCores,
    disturbed: top.disturbed,
    command: top.h2.command,
  };
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
  const logFile = join(ctx.outDir, `latency-${name}.tsv`);
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
