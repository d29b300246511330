import type { BatchValidateKeysResponse } from '../src/gen/keyward/v1/key_service.pb';
import type { BenchContext } from './context';
import { keyServicePb } from './dist-modules';
import { KeyLoader } from './key-loader';
import { measureListKeys, type ListLatency } from './list-keys';
import { rssMiB, sleep } from './processes';
import { f2, fmtKeys, int, MB, ratio } from './report-format';
import type { LoadStage } from './results';
import { defineScenario, targetList } from './scenario';
import { startKeyward, unary, type KeywardProcess } from './server-processes';

/**
 * (f) ListKeys first-page and deep-page latency with 10k, 100k and 1M keys of one service in
 *     Redis (loaded in stages through RedisKeyStore.create, timed);
 * (g) keyward's RSS idle after start and with 100k keys cached (every key of the 100k stage
 *     validated once through BatchValidateKeys, so each one is read from Redis and cached).
 */
export interface StoreResults {
  list: ListLatency[];
  loads: LoadStage[];
  /** RSS IDLE_SETTLE_S seconds after start: the idle figure the target reads. */
  idleRedisMiB: number;
  /** RSS each second after start (index 0 = 1 s): start-up's transient, then the settled heap. */
  idleSeriesMiB: number[];
  cachedKeys: number;
  /** RSS CACHED_SETTLE_S seconds after the last key was cached: the figure the target reads. */
  cachedMiB: number;
  /** RSS each second after the last key was cached (index 0 = 1 s). */
  cachedSeriesMiB: number[];
  redisRssAtMaxKeysMiB: number;
}

const SERVICE = 'bench-list';
const CACHE_STAGE = 100_000;
/**
 * Seconds the memory figures wait. V8 grows its young generation to the maximum (2 × 16 MiB
 * semi-spaces) and leaves free space in the old generation under an allocation burst (start-up,
 * the cache fill); its memory reducer shrinks the one and compacts the other once allocation has
 * calmed down: about 8 s after start-up, 10-40 s after a fill of 100k keys on this machine. The
 * figure after that is the footprint a long-running sidecar keeps; the series before it (the
 * peak) is reported too.
 */
const IDLE_SETTLE_S = 30;
const CACHED_SETTLE_S = 60;

/** VmRSS once a second for `seconds` seconds. */
async function rssSeries(pid: number, seconds: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < seconds; i++) {
    await sleep(1_000);
    out.push(rssMiB(pid));
  }
  return out;
}

export async function benchStore(ctx: BenchContext): Promise<StoreResults> {
  const stages = [10_000, 100_000, 1_000_000].filter((n) => n <= ctx.settings.maxKeys);
  if (stages.length === 0 || stages[stages.length - 1] !== ctx.settings.maxKeys) stages.push(ctx.settings.maxKeys);
  const cacheStage = stages.includes(CACHE_STAGE) ? CACHE_STAGE : stages[Math.min(1, stages.length - 1)];
  let kw: KeywardProcess | undefined;
  const loader = new KeyLoader(ctx.redisUrl, SERVICE);
  try {
    kw = await startKeyward('keyward-store', { env: { KEYWARD_REDIS_URL: ctx.redisUrl } });
    const idleSeriesMiB = await rssSeries(kw.pid, IDLE_SETTLE_S);
    const idleRedisMiB = idleSeriesMiB[IDLE_SETTLE_S - 1];
    ctx.log(`keyward (Redis store) RSS 2 s after start: ${idleSeriesMiB[1].toFixed(1)} MiB; ${IDLE_SETTLE_S} s after (idle): ${idleRedisMiB.toFixed(1)} MiB`);

    const list: ListLatency[] = [];
    const loads: LoadStage[] = [];
    let secrets: string[] = [];
    let cachedMiB = NaN;
    let cachedSeriesMiB: number[] = [];
    let cachedKeys = 0;
    for (const target of stages) {
      const added = target - loader.count;
      const deepPosition = Math.floor(target * 0.9) - 1;
      ctx.log(`loading ${added} keys into Redis (to ${target})`);
      const load = await loader.load(added, { keepSecrets: loader.count < cacheStage, idAt: [deepPosition] });
      if (loader.count <= cacheStage) secrets = secrets.concat(load.secrets);
      loads.push({ keys: target, added, seconds: load.seconds, perSec: load.perSec });
      ctx.log(`  loaded ${added} keys in ${load.seconds.toFixed(1)} s (${Math.round(load.perSec)} keys/s)`);
      const l = await measureListKeys(kw, SERVICE, target, { position: deepPosition, id: load.ids.get(deepPosition)! });
      list.push(l);
      ctx.log(`  ListKeys page_size 100: first page median ${l.firstPageMedianMs.toFixed(2)} ms, deep page (after key ${deepPosition + 1}) median ${l.deepPageMedianMs.toFixed(2)} ms`);
      if (target === cacheStage) {
        ctx.log(`validating the ${secrets.length} keys once each so that keyward caches them`);
        await validateAll(kw, secrets);
        cachedKeys = secrets.length;
        secrets = [];
        cachedSeriesMiB = await rssSeries(kw.pid, CACHED_SETTLE_S); // usage flush, then the heap settles
        cachedMiB = cachedSeriesMiB[CACHED_SETTLE_S - 1];
        ctx.log(`  keyward RSS with ${cachedKeys} keys cached: ${cachedSeriesMiB[4].toFixed(1)} MiB after 5 s, peak ${Math.max(...cachedSeriesMiB).toFixed(1)} MiB, ${cachedMiB.toFixed(1)} MiB after ${CACHED_SETTLE_S} s`);
      }
    }
    return { list, loads, idleRedisMiB, idleSeriesMiB, cachedKeys, cachedMiB, cachedSeriesMiB, redisRssAtMaxKeysMiB: rssMiB(ctx.redisPid) };
  } finally {
    await loader.close();
    await kw?.stop();
  }
}

/**
 * BatchValidateKeys in batches of 100, one at a time (keys reach the cache gradually, as with
 * real traffic, rather than in a burst that inflates the heap); every answer must be VALID.
 */
async function validateAll(kw: KeywardProcess, secrets: string[]): Promise<void> {
  const batches: string[][] = [];
  for (let i = 0; i < secrets.length; i += 100) batches.push(secrets.slice(i, i + 100));
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < batches.length) {
      const batch = batches[next++];
      const res: BatchValidateKeysResponse = await unary(
        kw.keys.batchValidateKeys,
        kw.keys,
        keyServicePb.BatchValidateKeysRequest.fromPartial({
          requests: batch.map((key) => ({ key, service: SERVICE, requiredScopes: ['orders:read'] })),
        }),
      );
      const bad = res.responses.filter((r) => !r.valid);
      if (bad.length > 0) throw new Error(`${bad.length} of ${batch.length} keys did not validate, e.g. ${JSON.stringify(bad[0])}`);
    }
  };
  await worker();
}

export const storeScenario = defineScenario<StoreResults>({
  name: 'store',
  summary: 'ListKeys first and deep page at 10k, 100k and 1M keys in Redis; RSS idle and with 100k keys cached',
  run: benchStore,
  targets(r) {
    const t = targetList();
    const small = r.list[0];
    const large = r.list[r.list.length - 1];
    if (small && large && large !== small) {
      const first = large.firstPageMedianMs / small.firstPageMedianMs;
      const deep = large.deepPageMedianMs / small.deepPageMedianMs;
      const label = `${fmtKeys(large.keys)} vs ${fmtKeys(small.keys)} keys`;
      t.add('list-first', `ListKeys first page, ${label}`, '≤ 2×', ratio(first), first <= 2);
      t.add('list-deep', `ListKeys deep page (after 90%), ${label}`, '≤ 2×', ratio(deep), deep <= 2);
    }
    const idleMB = r.idleRedisMiB / MB;
    t.add('rss-idle', `RSS idle (Redis store, ${IDLE_SETTLE_S} s after start)`, '≤ 100 MB', `${idleMB.toFixed(1)} MB`, idleMB <= 100);
    const cachedMB = r.cachedMiB / MB;
    t.add('rss-cached', `RSS with ${fmtKeys(r.cachedKeys)} keys cached (${CACHED_SETTLE_S} s after the last)`, '≤ 200 MB', `${cachedMB.toFixed(1)} MB`, cachedMB <= 200);
    return t.list;
  },
  render(r) {
    const L: string[] = [];
    L.push('### ListKeys (Redis store, page_size 100, median of sequential calls)');
    L.push('');
    L.push('| keys in the service | first page median | first page p99 | deep page median | deep page p99 | calls each |');
    L.push('| --- | --- | --- | --- | --- | --- |');
    for (const l of r.list) {
      L.push(`| ${fmtKeys(l.keys)} | ${l.firstPageMedianMs.toFixed(2)} ms | ${l.firstPageP99Ms.toFixed(2)} ms | ${l.deepPageMedianMs.toFixed(2)} ms | ${l.deepPageP99Ms.toFixed(2)} ms | ${l.calls} |`);
    }
    L.push('');
    L.push('Keys were loaded straight into Redis with `RedisKeyStore.create` (the same Lua script as the admin API; 512 concurrent creates on one auto-pipelined connection):');
    L.push('');
    L.push('| stage | keys added | time | keys/s |');
    L.push('| --- | --- | --- | --- |');
    for (const l of r.loads) L.push(`| ${fmtKeys(l.keys)} | ${int(l.added)} | ${l.seconds.toFixed(1)} s | ${int(l.perSec)} |`);
    const total = r.loads.reduce((a, l) => a + l.seconds, 0);
    L.push(`| total | ${int(r.loads.reduce((a, l) => a + l.added, 0))} | ${total.toFixed(1)} s | |`);
    L.push('');
    L.push('### Memory (VmRSS of the keyward process, Redis store)');
    L.push('');
    const mem = (mib: number | undefined): string => (mib === undefined ? '—' : `${(mib / MB).toFixed(1)} MB (${f2(mib)} MiB)`);
    L.push('| state | RSS |');
    L.push('| --- | --- |');
    L.push(`| start-up, 2 s after start | ${mem(r.idleSeriesMiB[1])} |`);
    L.push(`| **idle, ${IDLE_SETTLE_S} s after start** | ${mem(r.idleRedisMiB)} |`);
    L.push(`| ${fmtKeys(r.cachedKeys)} keys cached, 5 s after the last | ${mem(r.cachedSeriesMiB[4])} |`);
    L.push(`| ${fmtKeys(r.cachedKeys)} keys cached, peak in the ${CACHED_SETTLE_S} s after the last | ${mem(Math.max(...r.cachedSeriesMiB))} |`);
    L.push(`| **${fmtKeys(r.cachedKeys)} keys cached, ${CACHED_SETTLE_S} s after the last** | ${mem(r.cachedMiB)} |`);
    L.push(`| (redis-server with ${fmtKeys(r.loads[r.loads.length - 1]?.keys ?? 0)} keys, for reference) | ${(r.redisRssAtMaxKeysMiB / MB).toFixed(0)} MB |`);
    L.push('');
    L.push(
      `RSS each second (MiB): after start ${r.idleSeriesMiB.map((x) => x.toFixed(0)).join(', ')}; after the cache fill ${r.cachedSeriesMiB.map((x) => x.toFixed(0)).join(', ')}. ` +
        'V8 grows its young generation to its maximum (2 × 16 MiB) and leaves free space in the old generation under an allocation burst (start-up, the fill); ' +
        'its memory reducer shrinks the one and compacts the other once allocation has calmed down (the drop in the series). The bold rows, after that, are the footprint ' +
        'a long-running sidecar keeps, and what the targets read; a container memory limit must also cover the peak.',
    );
    return L;
  },
});
