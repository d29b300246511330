import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { OUT_DIR, type BenchContext } from './context';
import { findH2load, h2loadVersion } from './h2load';
import { machineInfo, waitForQuiet } from './machine';
import { profileScenario, type ProfileScenario } from './profiling';
import { installCleanup, killAll, ROOT } from './processes';
import { startRedis } from './redis-server';
import { evaluateTargets, writeReport } from './report';
import type { BenchResults, BenchSettings } from './results';
import { benchStore } from './store-bench';
import { benchStream } from './stream-bench';
import { benchUnary } from './unary-bench';

/**
 * `npm run bench`: keyward's performance against bare grpc-js floors, on loopback only.
 * Every server runs in its own process; see docs/BENCHMARKS.md for the method and results.
 *
 * Settings (environment): BENCH_DURATION (s, default 10), BENCH_WARMUP (s, 2), BENCH_REPS (2),
 * BENCH_CLIENTS / BENCH_STREAMS (h2load -c / -m), BENCH_STREAM_CLIENTS, BENCH_STREAM_WINDOW,
 * BENCH_STREAM_MESSAGES, BENCH_MAX_KEYS (1000000), BENCH_QUIET_WAIT (s, 20), BENCH_MAX_ATTEMPTS (2), BENCH_PROFILE (1: profile every scenario,
 * 0: never; default: only those whose target was missed).
 */
function settingsFromEnv(): BenchSettings {
  const num = (name: string, fallback: number): number => {
    const v = process.env[name];
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`);
    return n;
  };
  return {
    durationS: num('BENCH_DURATION', 10),
    warmupS: num('BENCH_WARMUP', 2),
    reps: num('BENCH_REPS', 2),
    h2loadClients: num('BENCH_CLIENTS', 4),
    h2loadStreams: num('BENCH_STREAMS', 32),
    streamClients: num('BENCH_STREAM_CLIENTS', 1),
    streamWindow: num('BENCH_STREAM_WINDOW', 512),
    h2loadStreamMessages: num('BENCH_STREAM_MESSAGES', 100),
    maxKeys: num('BENCH_MAX_KEYS', 1_000_000),
  };
}

async function main(): Promise<void> {
  const h2load = findH2load();
  if (h2load === undefined) {
    process.stderr.write(
      'bench: h2load is not installed (it is the load generator).\n' +
        '       Install it with `sudo apt-get install nghttp2-client` (Debian/Ubuntu), then run `npm run bench` again.\n',
    );
    process.exit(1);
  }
  installCleanup();
  const started = performance.now();
  const settings = settingsFromEnv();
  rmSync(join(OUT_DIR, 'profiles'), { recursive: true, force: true });
  mkdirSync(OUT_DIR, { recursive: true });
  const log = (m: string): void => {
    const t = ((performance.now() - started) / 1000).toFixed(0).padStart(4);
    process.stdout.write(`[${t}s] ${m}\n`);
  };
  const machine = machineInfo();
  log(`keyward bench: ${machine.nproc} cores (${machine.cpuModel}), node ${machine.node}, ${h2loadVersion(h2load)}`);
  log(`settings: ${JSON.stringify(settings)}`);
  const quiet = await waitForQuiet();
  if (quiet.busyCores > 0.3) log(`warning: the machine is busy (${quiet.busyCores.toFixed(2)} cores used by other processes); numbers will be low and noisy`);

  const redis = await startRedis();
  const ctx: BenchContext = { settings, h2load, redisUrl: redis.url, redisPid: redis.pid, outDir: OUT_DIR, log };
  try {
    const unary = await benchUnary(ctx);
    const stream = await benchStream(ctx);
    const store = await benchStore(ctx);
    const grpcJs = (JSON.parse(readFileSync(join(ROOT, 'node_modules/@grpc/grpc-js/package.json'), 'utf8')) as { version: string }).version;
    const results: BenchResults = {
      date: new Date().toISOString(),
      machine: { ...machine, h2load: h2loadVersion(h2load), redis: redis.version, grpcJs },
      settings,
      backgroundCores: quiet.busyCores,
      unary: { floor: unary.floor, cached: unary.cached, cacheOff: unary.cacheOff, floorLatency: unary.floorLatency, latency: unary.latency },
      stream,
      list: store.list,
      loads: store.loads,
      rss: {
        idleEmbeddedMiB: unary.idleEmbeddedMiB,
        idleRedisMiB: store.idleRedisMiB,
        cachedKeys: store.cachedKeys,
        cachedMiB: store.cachedMiB,
        redisRssAtMaxKeysMiB: store.redisRssAtMaxKeysMiB,
      },
      targets: [],
      profiles: {},
      totalSeconds: 0,
    };
    results.targets = evaluateTargets(results);

    const profileMode = process.env.BENCH_PROFILE;
    const missed = new Set(results.targets.filter((t) => !t.pass).map((t) => t.id));
    const scenarios: ProfileScenario[] = [];
    if (profileMode !== '0') {
      if (profileMode === '1' || missed.has('cached-throughput') || missed.has('latency-p99')) scenarios.push('cached');
      if (profileMode === '1' || missed.has('cache-off-throughput')) scenarios.push('cache-off');
      if (profileMode === '1' || [...missed].some((id) => id.startsWith('stream'))) scenarios.push('stream');
    }
    for (const s of scenarios) results.profiles[s] = await profileScenario(ctx, s);

    results.totalSeconds = (performance.now() - started) / 1000;
    const written = writeReport(results);
    log(`wrote ${written.join(', ')}`);
    for (const t of results.targets) log(`${t.pass ? 'PASS' : 'FAIL'}  ${t.description}: ${t.value} (target ${t.target})`);
    log(`done in ${results.totalSeconds.toFixed(0)} s`);
  } finally {
    await redis.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    killAll();
    process.exit(1);
  },
);
