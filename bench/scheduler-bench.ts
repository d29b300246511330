import type { KeyRecord } from '../src/domain/key-record';
import type { RedisClient, RedisKeyStore } from '../src/adapters/store/redis-key-store';
import { keyFormat, keyHash, keyId, redisStore } from './dist-modules';
import { median, quantile } from './stats';

/*
 * Issue 6's target: "a scheduler tick over 1M keys of which none are due does O(1) work".
 *
 * When nothing is due, the lifecycle scheduler's only store read per tick is
 * `KeyStore.due(now, batch)`: on Redis one ZRANGEBYSCORE `{kw}:due -inf <now> LIMIT 0 <batch>`
 * (the lease renewal is one O(1) script whatever the key count, so it is left out). This measures
 * that call with a small and a large store, and compares:
 *
 *   - Redis's own time per call: the `cmdstat_zrangebyscore` delta of `INFO commandstats`
 *     (microseconds spent in the command, without network or client), the primary figure;
 *   - the latency of `store.due` at the client (median and p99), which adds ioredis and loopback.
 *
 * Data: every stage has its own RedisKeyStore key prefix (`{<keyPrefix>-<keys>}`) filled through
 * `RedisKeyStore.create` (the admin API's Lua script, so the record, pointer, six indexes and due
 * entry are what keyward writes) with `keys` keys that are none of them due: a `dueAt` between one
 * and two years ahead for `dueFraction` of them (default all: the due index holds every key, the
 * worst case for it) and no `dueAt` for the rest. The ListKeys scenario's 1M keys
 * (bench/key-loader.ts) are not reused: they have no `dueAt`, so their due index is empty and a
 * tick over them is trivially cheap; the interesting case is an index as large as the store.
 * Loading runs at the KeyLoader's rate (~10k keys/s, so ~100 s for 1M + 10k) and the 1M stage
 * takes ~2 GB of Redis memory, left in place unless `dropAfter` is set (UNLINK by SCAN, slow).
 *
 * Measurement: stages are measured in alternating blocks of calls (`blocks`), not one after the
 * other, so drift on a shared, noisy machine weighs on every stage alike; INFO commandstats is
 * read around each block and its delta attributed to that block's stage. Nothing else should use
 * ZRANGEBYSCORE on this Redis meanwhile (keyward servers of other scenarios must be stopped).
 */

export interface SchedulerTickBenchOptions {
  /** The Redis to load into and measure (the bench's shared redis-server). */
  redisUrl: string;
  /** Base of the stages' key prefixes (hash tags): `<keyPrefix>-<keys>`. Default `kwsched`. */
  keyPrefix?: string;
  /** Key counts to measure; the first is the reference of the ratios. Default [10_000, 1_000_000]. */
  stages?: readonly number[];
  /** The scheduler's batch size, `due(now, batch)`. Default 100. */
  batch?: number;
  /** Timed calls per stage, over all blocks (after 200 warm-up calls). Default 4000. */
  calls?: number;
  /** Alternating blocks the calls are split into. Default 8. */
  blocks?: number;
  /** Fraction of keys with a (future) dueAt, 0..1. Default 1. */
  dueFraction?: number;
  /** Concurrent creates while loading (one auto-pipelined connection). Default 512. */
  loadConcurrency?: number;
  /** Remove the loaded keys afterwards (SCAN + UNLINK per prefix). Default false. */
  dropAfter?: boolean;
  log?: (message: string) => void;
}

export interface SchedulerTickStage {
  /** Keys in the stage's store. */
  keys: number;
  /** Entries of its due index (ZCARD), all in the future. */
  dueIndexSize: number;
  loadSeconds: number;
  calls: number;
  /** Ids returned over every timed call: 0, since none is due (checked; a non-zero throws). */
  returned: number;
  /** Redis's time per ZRANGEBYSCORE (INFO commandstats usec delta / calls delta), µs. */
  redisUsecPerCall: number;
  /** The same per block, µs: their spread shows the noise. */
  redisUsecPerCallByBlock: number[];
  /** `store.due` latency at the client, ms. */
  clientMedianMs: number;
  clientP99Ms: number;
}

export interface SchedulerTickResult {
  batch: number;
  stages: SchedulerTickStage[];
  /** Largest stage's Redis time per call / the first stage's: target about 1.0 (O(1) in the key count). */
  redisCostRatio: number;
  /** The same ratio per block pair (min and max), for the noise. */
  redisCostRatioRange: [number, number];
  /** Largest stage's client median latency / the first stage's. */
  clientMedianRatio: number;
}

export async function schedulerTickBench(opts: SchedulerTickBenchOptions): Promise<SchedulerTickResult> {
  const stagesKeys = [...(opts.stages ?? [10_000, 1_000_000])];
  const batch = opts.batch ?? 100;
  const calls = opts.calls ?? 4_000;
  const blocks = Math.max(1, opts.blocks ?? 8);
  const dueFraction = opts.dueFraction ?? 1;
  const log = opts.log ?? (() => {});
  const base = opts.keyPrefix ?? 'kwsched';
  if (stagesKeys.length < 2) throw new RangeError('schedulerTickBench needs at least two stages to compare');

  const admin = redisStore.createRedisClient(opts.redisUrl, { commandTimeout: 60_000 });
  await redisStore.waitUntilReady(admin, 10_000);
  const stages: Array<{ keys: number; prefix: string; store: RedisKeyStore; loadSeconds: number; ms: number[]; usec: number[]; callsByBlock: number[]; returned: number }> = [];
  try {
    for (const keys of stagesKeys) {
      const prefix = `${base}-${keys}`;
      const store = await openStore(opts.redisUrl, prefix);
      // a previous run on the same Redis may have loaded the stage already
      const present = await admin.zcard(`{${prefix}}:i:s:*`);
      let loadSeconds = 0;
      if (present !== keys) {
        if (present !== 0) await drop(admin, prefix);
        log(`scheduler tick: loading ${keys} keys (none due) under {${prefix}}`);
        loadSeconds = await load(opts.redisUrl, prefix, keys, dueFraction, opts.loadConcurrency ?? 512);
        log(`  loaded in ${loadSeconds.toFixed(1)} s (${Math.round(keys / loadSeconds)} keys/s)`);
      }
      stages.push({ keys, prefix, store, loadSeconds, ms: [], usec: [], callsByBlock: [], returned: 0 });
    }

    const now = Date.now();
    for (const s of stages) for (let i = 0; i < 200; i++) s.returned += (await s.store.due(now, batch)).length; // warm-up
    const perBlock = Math.ceil(calls / blocks);
    for (let b = 0; b < blocks; b++) {
      // alternate the order too, so neither stage always follows the other
      for (const s of b % 2 === 0 ? stages : [...stages].reverse()) {
        const before = await zrangebyscoreStats(admin);
        for (let i = 0; i < perBlock; i++) {
          const t0 = performance.now();
          const ids = await s.store.due(now, batch);
          s.ms.push(performance.now() - t0);
          s.returned += ids.length;
        }
        const after = await zrangebyscoreStats(admin);
        s.usec.push(after.usec - before.usec);
        s.callsByBlock.push(after.calls - before.calls);
      }
    }

    const result: SchedulerTickStage[] = [];
    for (const s of stages) {
      if (s.returned !== 0) throw new Error(`scheduler tick bench: ${s.returned} ids returned by due() at ${s.keys} keys, but none is due`);
      const totalCalls = s.callsByBlock.reduce((a, c) => a + c, 0);
      if (totalCalls < s.ms.length) throw new Error(`INFO commandstats counted ${totalCalls} ZRANGEBYSCORE calls for ${s.ms.length} due() calls`);
      result.push({
        keys: s.keys,
        dueIndexSize: await admin.zcard(`{${s.prefix}}:due`),
        loadSeconds: s.loadSeconds,
        calls: s.ms.length,
        returned: s.returned,
        redisUsecPerCall: s.usec.reduce((a, u) => a + u, 0) / totalCalls,
        redisUsecPerCallByBlock: s.usec.map((u, i) => u / s.callsByBlock[i]),
        clientMedianMs: median(s.ms),
        clientP99Ms: quantile(s.ms, 0.99),
      });
    }
    const first = result[0];
    const last = result[result.length - 1];
    const blockRatios = last.redisUsecPerCallByBlock.map((u, i) => u / first.redisUsecPerCallByBlock[i]);
    for (const r of result) {
      log(`  ${r.keys} keys (due index ${r.dueIndexSize}): Redis ${r.redisUsecPerCall.toFixed(2)} µs/call, client median ${r.clientMedianMs.toFixed(3)} ms, p99 ${r.clientP99Ms.toFixed(3)} ms`);
    }
    return {
      batch,
      stages: result,
      redisCostRatio: last.redisUsecPerCall / first.redisUsecPerCall,
      redisCostRatioRange: [Math.min(...blockRatios), Math.max(...blockRatios)],
      clientMedianRatio: last.clientMedianMs / first.clientMedianMs,
    };
  } finally {
    await Promise.all(stages.map((s) => s.store.close()));
    if (opts.dropAfter) for (const s of stages) await drop(admin, s.prefix);
    await admin.quit();
  }
}

async function openStore(redisUrl: string, prefix: string): Promise<RedisKeyStore> {
  const redis = redisStore.createRedisClient(redisUrl, { commandTimeout: 30_000 });
  await redisStore.waitUntilReady(redis, 10_000);
  return new redisStore.RedisKeyStore({ redis, keyPrefix: prefix });
}

/** `calls` and `usec` of ZRANGEBYSCORE so far, from INFO commandstats (zeros before the first call). */
async function zrangebyscoreStats(admin: RedisClient): Promise<{ calls: number; usec: number }> {
  const info = await admin.info('commandstats');
  const m = /cmdstat_zrangebyscore:calls=(\d+),usec=(\d+)/.exec(info);
  return m ? { calls: Number(m[1]), usec: Number(m[2]) } : { calls: 0, usec: 0 };
}

/** Creates `n` keys under `prefix`, none due; returns the seconds it took. */
async function load(redisUrl: string, prefix: string, n: number, dueFraction: number, concurrency: number): Promise<number> {
  const redis = redisStore.createRedisClient(redisUrl, { enableAutoPipelining: true, commandTimeout: 30_000 });
  await redisStore.waitUntilReady(redis, 10_000);
  const store = new redisStore.RedisKeyStore({ redis, keyPrefix: prefix });
  const ids = new keyId.KeyIdGenerator();
  const year = 365 * 86_400_000;
  const withDue = Math.round(n * dueFraction);
  const started = performance.now();
  let next = 0;
  try {
    const worker = async (): Promise<void> => {
      while (next < n) {
        const i = next++;
        const now = Date.now();
        const secret = keyFormat.generateKey('sk');
        const record: KeyRecord = {
          id: ids.next(now),
          hash: keyHash.hashKey(secret),
          service: 'bench-sched',
          owner: `owner-${i % 1000}`,
          name: `scheduler bench key ${i}`,
          prefix: 'sk',
          hint: keyFormat.displayHint(keyFormat.parseKey(secret)!),
          scopes: ['orders:*'],
          metadata: { plan: 'pro' },
          state: 'active',
          createdAt: now,
          updatedAt: now,
          // spread over a year starting a year ahead: a realistic, wide due index, none due
          ...(i < withDue && { expiresAt: now + year + ((i * 7_919) % year), dueAt: now + year + ((i * 7_919) % year) }),
          usageCount: 0,
          version: 1,
        };
        await store.create(record);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
    return (performance.now() - started) / 1000;
  } finally {
    await store.close();
  }
}

async function drop(admin: RedisClient, prefix: string): Promise<void> {
  let cursor = '0';
  do {
    const [next, keys] = await admin.scan(cursor, 'MATCH', `{${prefix}}:*`, 'COUNT', 10_000);
    cursor = next;
    if (keys.length > 0) await admin.unlink(...keys);
  } while (cursor !== '0');
}
