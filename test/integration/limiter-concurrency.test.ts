import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import ts from 'typescript';
import { RedisLimiter } from '../../src/adapters/limits/redis-limiter';
import { createRedisClient, waitUntilReady } from '../../src/adapters/redis/redis-client';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

/*
 * Several sidecars hammering one key at once: two child processes, each with its own ioredis
 * connection, run the real RedisLimiter (transpiled from src/ for this test, so it never runs a
 * stale dist/) and fire all their checks at once; Redis interleaves the two streams. The totals
 * must respect the documented bounds exactly.
 */

const ROOT = resolve(__dirname, '../..');
const ENTRIES = ['src/adapters/limits/redis-limiter.ts', 'src/domain/limit-rules.ts'];
const CHILDREN = 2;
const T0 = Date.UTC(2025, 6, 14, 10, 30);

let server: RedisServerHandle;
let buildDir: string;

/** Transpiles ENTRIES and every module they require (relative imports) into `out`, keeping paths. */
async function transpileTree(out: string): Promise<void> {
  const seen = new Set<string>();
  const visit = async (file: string): Promise<void> => {
    if (seen.has(file)) return;
    seen.add(file);
    const source = await readFile(file, 'utf8');
    const { outputText } = ts.transpileModule(source, {
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true },
      fileName: file,
    });
    const target = join(out, relative(ROOT, file)).replace(/\.ts$/, '.js');
    await mkdir(dirname(target), { recursive: true });
    await writeFile(target, outputText);
    for (const [, spec] of outputText.matchAll(/require\("(\.{1,2}\/[^"]+)"\)/g)) {
      await visit(resolve(dirname(file), `${spec}.ts`));
    }
  };
  for (const entry of ENTRIES) await visit(join(ROOT, entry));
}

/** What a child runs: connect, say "ready", wait for "go", run every phase's checks at once. */
const CHILD = `
const { RedisLimiter } = require(process.env.BUILD + '/src/adapters/limits/redis-limiter.js');
const { createRedisClient, waitUntilReady } = require(process.env.BUILD + '/src/adapters/redis/redis-client.js');
const { compileLimits } = require(process.env.BUILD + '/src/domain/limit-rules.js');
const cfg = JSON.parse(require('node:fs').readFileSync(process.env.CFG, 'utf8'));
function prng(seed) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
(async () => {
  const redis = createRedisClient(cfg.url, { commandTimeout: 10000 });
  await waitUntilReady(redis);
  const limiter = new RedisLimiter({ redis });
  process.stdout.write('ready\\n');
  await new Promise((resolve) => process.stdin.once('data', resolve));
  const out = await Promise.all(cfg.phases.map(async (p, k) => {
    const rnd = prng(cfg.seed * 1000 + k);
    const limits = compileLimits(p.rateLimits, p.credits); // once per phase, as once per policy version
    const checks = [];
    for (let i = 0; i < p.count; i++) {
      const cost = p.maxCost ? 1 + Math.floor(rnd() * p.maxCost) : 1;
      const now = p.spreadMs ? p.now + Math.floor(rnd() * p.spreadMs) : p.now;
      checks.push({ keyId: p.keyId, cost, limits, now });
    }
    const results = await Promise.all(checks.map((c) => limiter.check(c)));
    return results.map((r, i) => [r.allowed ? 1 : 0, checks[i].cost, r.creditsRemaining === undefined ? null : r.creditsRemaining]);
  }));
  process.stdout.write(JSON.stringify(out) + '\\n');
  await limiter.close();
})().catch((err) => {
  console.error(err);
  process.exit(1);
});
`;

interface Phase {
  keyId: string;
  count: number;
  now: number;
  spreadMs?: number;
  maxCost?: number;
  rateLimits: { name: string; limit: number; periodMs: number; burst: number }[];
  credits?: { initial: number };
}
/** Per check: [allowed 1/0, cost, credits remaining after]. */
type Outcome = [number, number, number | null];

function startChild(cfgFile: string): { child: ChildProcess; ready: Promise<void>; result: Promise<Outcome[][]> } {
  const child = spawn(process.execPath, ['-e', CHILD], {
    env: { ...process.env, BUILD: buildDir, CFG: cfgFile, NODE_PATH: join(ROOT, 'node_modules') },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const lines = createInterface({ input: child.stdout! });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  const result = new Promise<Outcome[][]>((resolveResult, reject) => {
    lines.on('line', (line) => {
      if (line === 'ready') onReady();
      else resolveResult(JSON.parse(line) as Outcome[][]);
    });
    void exited.then((code) => {
      if (code !== 0) reject(new Error(`child exited with ${code}: ${stderr}`));
    });
  });
  return { child, ready: Promise.race([ready, result.then(() => undefined)]), result };
}

/** Runs the phases in CHILDREN processes at once; per phase, every child's outcomes together. */
async function hammer(phases: Phase[]): Promise<Outcome[][]> {
  const children = await Promise.all(
    Array.from({ length: CHILDREN }, async (_, seed) => {
      const cfg = join(buildDir, `cfg-${seed}-${randomUUID()}.json`);
      await writeFile(cfg, JSON.stringify({ url: server.url, seed: seed + 1, phases }));
      return startChild(cfg);
    }),
  );
  try {
    await Promise.all(children.map((c) => c.ready));
    for (const c of children) c.child.stdin!.write('go\n'); // both start together
    const all = await Promise.all(children.map((c) => c.result));
    return phases.map((_, k) => all.flatMap((perChild) => perChild[k]));
  } finally {
    for (const c of children) if (c.child.exitCode === null) c.child.kill('SIGKILL');
  }
}

beforeAll(async () => {
  buildDir = await mkdtemp(join(tmpdir(), 'keyward-limiter-'));
  [server] = await Promise.all([startRedis(), transpileTree(buildDir)]);
});

afterAll(async () => {
  await server?.stop();
  if (buildDir) await rm(buildDir, { recursive: true, force: true });
});

const admittedUnits = (outcomes: Outcome[]): number => outcomes.reduce((n, [ok, cost]) => n + (ok ? cost : 0), 0);

it('two sidecars hammering one key stay within the limits and the credits exactly', async () => {
  const perMinute = { name: 'per-minute', limit: 100, periodMs: 60_000, burst: 20 };
  const id = (): string => `key_${randomUUID()}`;
  const phases: Phase[] = [
    // 1. all at one instant: exactly burst + 1
    { keyId: id(), count: 500, now: T0, rateLimits: [perMinute] },
    // 2. spread over one period, costs 1..3, arriving out of order: at most limit + burst units
    { keyId: id(), count: 500, now: T0, spreadMs: 60_000, maxCost: 3, rateLimits: [perMinute] },
    // 3. credits only, random costs 1..5: exactly the initial credits are spent
    { keyId: id(), count: 400, now: T0, maxCost: 5, rateLimits: [], credits: { initial: 1000 } },
    // 4. a rate limit and credits: the requests the limit refuses consume no credits
    { keyId: id(), count: 300, now: T0, rateLimits: [{ ...perMinute, burst: 9 }], credits: { initial: 1000 } },
  ];
  const [instant, spread, credits, both] = await hammer(phases);

  expect(instant).toHaveLength(CHILDREN * 500);
  expect(admittedUnits(instant)).toBe(21);

  expect(admittedUnits(spread)).toBeLessThanOrEqual(100 + 20);
  expect(admittedUnits(spread)).toBeGreaterThan(0);

  // credits: every admitted request took its cost from one linear sequence starting at 1000
  const admitted = credits.filter(([ok]) => ok === 1).sort((a, b) => b[2]! - a[2]!);
  let expected = 1000;
  for (const [, cost, after] of admitted) {
    expect(after).toBe(expected - cost);
    expected = after!;
  }
  const spent = admittedUnits(credits);
  const redis = createRedisClient(server.url);
  await waitUntilReady(redis);
  const limiter = new RedisLimiter({ redis });
  const left = await limiter.credits(phases[2].keyId, { initial: 1000 }, T0);
  expect(left).toBe(expected);
  expect(spent + left!).toBe(1000);
  expect(left).toBeGreaterThanOrEqual(0);
  const denied = credits.filter(([ok]) => ok === 0);
  expect(denied.length).toBeGreaterThan(0); // demand (≈ 2400) exceeded the credits
  expect(left).toBeLessThan(Math.min(...denied.map(([, cost]) => cost)));
  for (const [ok, , after] of credits) if (!ok) expect(after).toBeGreaterThanOrEqual(0);

  expect(admittedUnits(both)).toBe(10);
  expect(await limiter.credits(phases[3].keyId, { initial: 1000 }, T0)).toBe(990);
  await limiter.close();
});
