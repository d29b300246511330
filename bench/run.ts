import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { startRedis } from '../test/support/redis-server';
import { OUT_DIR, type BenchContext } from './context';
import { eventsOverheadScenario } from './events-overhead-bench';
import { findH2load, h2loadVersion } from './h2load';
import { machineInfo, waitForQuiet } from './machine';
import { policyScenario } from './policy-bench';
import { profileScenario, type ProfileScenario } from './profiling';
import { installCleanup, killAll, ROOT } from './processes';
import { evaluateTargets, writeReport } from './report';
import type { BenchResults, BenchSettings } from './results';
import { revocationScenario } from './revocation-bench';
import { schedulerScenario } from './scheduler-scenario';
import type { AnyScenario } from './scenario';
import { storeScenario } from './store-bench';
import { streamScenario } from './stream-bench';
import { tracingScenario } from './tracing-bench';
import { unaryScenario } from './unary-bench';

/**
 * `npm run bench`: keyward's performance against bare grpc-js floors, on loopback only.
 * Every server runs in its own process; see docs/BENCHMARKS.md for the method and results.
 *
 * Settings (environment): BENCH_ONLY (comma-separated scenario names; default all),
 * BENCH_DURATION (s, default 6), BENCH_WARMUP (s, 2), BENCH_REPS (6: three mirrored pairs), BENCH_CLIENTS /
 * BENCH_STREAMS (h2load -c / -m), BENCH_STREAM_CLIENTS, BENCH_STREAM_WINDOW,
 * BENCH_STREAM_MESSAGES, BENCH_MAX_KEYS (1000000), BENCH_REVOKE_KEYS (200), BENCH_QUIET_WAIT
 * (s, 20), BENCH_MAX_ATTEMPTS (2), BENCH_PROFILE (1: profile every scenario, 0: never;
 * default: only those whose target was missed).
 */

/**
 * Every scenario, in the order a full run takes them. `store` and `scheduler` come last: each loads
 * 1M keys into the shared redis-server, which would weigh on the scenarios after them.
 */
const SCENARIOS: readonly AnyScenario[] = [
  unaryScenario,
  streamScenario,
  policyScenario,
  tracingScenario,
  eventsOverheadScenario,
  revocationScenario,
  storeScenario,
  schedulerScenario,
];

function settingsFromEnv(): BenchSettings {
  const num = (name: string, fallback: number): number => {
    const v = process.env[name];
    if (v === undefined || v === '') return fallback;
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got ${v}`);
    return n;
  };
  return {
    durationS: num('BENCH_DURATION', 6),
    warmupS: num('BENCH_WARMUP', 2),
    reps: num('BENCH_REPS', 6),
    h2loadClients: num('BENCH_CLIENTS', 4),
    h2loadStreams: num('BENCH_STREAMS', 32),
    streamClients: num('BENCH_STREAM_CLIENTS', 1),
    streamWindow: num('BENCH_STREAM_WINDOW', 512),
    h2loadStreamMessages: num('BENCH_STREAM_MESSAGES', 100),
    maxKeys: num('BENCH_MAX_KEYS', 1_000_000),
    revokeKeys: num('BENCH_REVOKE_KEYS', 200),
  };
}

/** The scenarios BENCH_ONLY names (in run order), or all of them. */
function selectedScenarios(): { scenarios: readonly AnyScenario[]; partial: boolean } {
  const only = (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (only.length === 0) return { scenarios: SCENARIOS, partial: false };
  const known = SCENARIOS.map((s) => s.name);
  const unknown = only.filter((n) => !known.includes(n));
  if (unknown.length > 0) throw new Error(`BENCH_ONLY: unknown scenario(s) ${unknown.join(', ')}; known: ${known.join(', ')}`);
  const scenarios = SCENARIOS.filter((s) => only.includes(s.name));
  return { scenarios, partial: scenarios.length < SCENARIOS.length };
}

function version(command: string, args: string[], pattern: RegExp): string {
  try {
    return pattern.exec(execFileSync(command, args, { encoding: 'utf8' }))?.[1] ?? 'unknown';
  } catch {
    return 'not installed';
  }
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
  const { scenarios, partial } = selectedScenarios();
  installCleanup();
  const started = performance.now();
  const settings = settingsFromEnv();
  if (settings.reps > 1 && settings.reps % 6 !== 0) {
    process.stderr.write(
      `bench: BENCH_REPS=${settings.reps}: ratios are balanced for the order of measurement only for multiples of 6 ` +
        '(mirrored pairs over three rotations); an odd last rep is left out of them.\n',
    );
  }
  rmSync(join(OUT_DIR, 'profiles'), { recursive: true, force: true });
  mkdirSync(OUT_DIR, { recursive: true });
  const log = (m: string): void => {
    const t = ((performance.now() - started) / 1000).toFixed(0).padStart(4);
    process.stdout.write(`[${t}s] ${m}\n`);
  };
  const machine = machineInfo();
  log(`keyward bench: ${machine.nproc} cores (${machine.cpuModel}), node ${machine.node}, ${h2loadVersion(h2load)}`);
  log(`scenarios: ${scenarios.map((s) => s.name).join(', ')}${partial ? ' (BENCH_ONLY: a partial run, reported in bench/out/ only)' : ''}`);
  log(`settings: ${JSON.stringify(settings)}`);
  const quiet = await waitForQuiet();
  if (quiet.busyCores > 0.3) log(`warning: the machine is busy (${quiet.busyCores.toFixed(2)} cores used by other processes); numbers will be low and noisy`);

  const redis = await startRedis();
  const ctx: BenchContext = { settings, h2load, redisUrl: redis.url, redisPid: redis.pid, outDir: OUT_DIR, log };
  try {
    const grpcJs = (JSON.parse(readFileSync(join(ROOT, 'node_modules/@grpc/grpc-js/package.json'), 'utf8')) as { version: string }).version;
    const results: BenchResults = {
      date: new Date().toISOString(),
      machine: {
        ...machine,
        h2load: h2loadVersion(h2load),
        redis: version('redis-server', ['--version'], /v=(\S+)/),
        natsServer: version(process.env.NATS_SERVER_BIN ?? '/usr/sbin/nats-server', ['--version'], /v?(\d+\.\d+\.\d+\S*)/),
        grpcJs,
      },
      settings,
      backgroundCores: quiet.busyCores,
      scenarios: scenarios.map((s) => s.name),
      results: {},
      seconds: {},
      targets: [],
      profiles: {},
      totalSeconds: 0,
    };
    for (const scenario of scenarios) {
      const t0 = performance.now();
      log(`== ${scenario.name}: ${scenario.summary}`);
      results.results[scenario.name] = await scenario.run(ctx);
      results.seconds[scenario.name] = (performance.now() - t0) / 1000;
      log(`== ${scenario.name} done in ${results.seconds[scenario.name].toFixed(0)} s`);
    }
    results.targets = evaluateTargets(scenarios, results);

    const profileMode = process.env.BENCH_PROFILE;
    const ran = new Set(results.scenarios);
    const missed = new Set(results.targets.filter((t) => !t.pass).map((t) => t.id));
    const toProfile: ProfileScenario[] = [];
    if (profileMode !== '0') {
      const all = profileMode === '1';
      if (ran.has('unary') && (all || missed.has('cached-throughput') || missed.has('latency-p99'))) toProfile.push('cached');
      if (ran.has('unary') && (all || missed.has('cache-off-throughput'))) toProfile.push('cache-off');
      if (ran.has('stream') && (all || [...missed].some((id) => id.startsWith('stream')))) toProfile.push('stream');
    }
    for (const s of toProfile) results.profiles[s] = await profileScenario(ctx, s);

    results.totalSeconds = (performance.now() - started) / 1000;
    const written = writeReport(scenarios, results, { docs: !partial });
    log(`wrote ${written.join(', ')}`);
    for (const t of results.targets) log(`${t.pass ? 'PASS' : 'FAIL'}  [${t.scenario}] ${t.description}: ${t.value} (target ${t.target})`);
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
