import type { BatchValidateKeysResponse } from '../src/gen/keyward/v1/key_service.pb';
import type { BenchContext } from './context';
import { keyServicePb } from './dist-modules';
import { KeyLoader } from './key-loader';
import { measureListKeys, type ListLatency } from './list-keys';
import { rssMiB, sleep } from './processes';
import type { LoadStage } from './results';
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
  idleRedisMiB: number;
  cachedKeys: number;
  cachedMiB: number;
  redisRssAtMaxKeysMiB: number;
}

const SERVICE = 'bench-list';
const CACHE_STAGE = 100_000;

export async function benchStore(ctx: BenchContext): Promise<StoreResults> {
  const stages = [10_000, 100_000, 1_000_000].filter((n) => n <= ctx.settings.maxKeys);
  if (stages.length === 0 || stages[stages.length - 1] !== ctx.settings.maxKeys) stages.push(ctx.settings.maxKeys);
  const cacheStage = stages.includes(CACHE_STAGE) ? CACHE_STAGE : stages[Math.min(1, stages.length - 1)];
  let kw: KeywardProcess | undefined;
  const loader = new KeyLoader(ctx.redisUrl, SERVICE);
  try {
    kw = await startKeyward('keyward-store', { env: { KEYWARD_REDIS_URL: ctx.redisUrl } });
    await sleep(2_000);
    const idleRedisMiB = rssMiB(kw.pid);
    ctx.log(`keyward (Redis store) idle RSS: ${idleRedisMiB.toFixed(1)} MiB`);

    const list: ListLatency[] = [];
    const loads: LoadStage[] = [];
    let secrets: string[] = [];
    let cachedMiB = NaN;
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
        await sleep(5_000); // usage flush and GC settle
        cachedMiB = rssMiB(kw.pid);
        ctx.log(`  keyward RSS with ${cachedKeys} keys cached: ${cachedMiB.toFixed(1)} MiB`);
      }
    }
    return { list, loads, idleRedisMiB, cachedKeys, cachedMiB, redisRssAtMaxKeysMiB: rssMiB(ctx.redisPid) };
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
