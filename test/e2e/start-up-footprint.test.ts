import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT, startKeyward } from '../support/keyward-process';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

/**
 * What a plain `keyward serve` loads stays in its heap for as long as the sidecar runs, so the
 * embedded sidecar must not load what it does not use: ioredis (only with KEYWARD_REDIS_URL),
 * the YAML parser (only with a KEYWARD_CONFIG file) and commander with the admin CLI (only for
 * the other commands). A preload lists the packages the process loaded when it exits.
 */
const PRELOAD = join(ROOT, 'test/support/loaded-packages-preload.js');

async function packagesLoadedBy(env: Record<string, string>): Promise<string[]> {
  const kw = await startKeyward({ ...env, NODE_OPTIONS: `--require ${PRELOAD}` });
  expect(await kw.stop()).toBe(0);
  const line = kw.stderr.find((l) => l.startsWith('{"loadedPackages"'));
  if (line === undefined) throw new Error(`no package list on stderr: ${kw.stderr.join('\n')}`);
  return (JSON.parse(line) as { loadedPackages: string[] }).loadedPackages;
}

describe('start-up footprint of keyward serve', () => {
  let redis: RedisServerHandle;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(async () => {
    await redis?.stop();
  });

  it('loads neither ioredis, the YAML parser nor commander with the embedded store', async () => {
    const loaded = await packagesLoadedBy({});
    expect(loaded).toEqual(expect.arrayContaining(['@grpc/grpc-js', 'lru-cache', 'pino']));
    expect(loaded).not.toContain('ioredis');
    expect(loaded).not.toContain('yaml');
    expect(loaded).not.toContain('commander');
  });

  it('collects start-up garbage once, before the listeners open (with tracing on too)', async () => {
    const envs: Record<string, string>[] = [{}, { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://127.0.0.1:9', OTEL_TRACES_SAMPLER_ARG: '0' }];
    for (const env of envs) {
      const kw = await startKeyward({ ...env, KEYWARD_LOG_LEVEL: 'debug' });
      try {
        const msgs = kw.logs.map((l) => l.msg);
        const gc = kw.logs.filter((l) => l.msg === 'start-up garbage collected');
        expect(gc).toHaveLength(1);
        expect(msgs.indexOf('start-up garbage collected')).toBeLessThan(msgs.indexOf('keyward listening'));
        const { before, after } = gc[0].heapUsedMiB as { before: number; after: number };
        expect(after).toBeLessThan(before);
      } finally {
        expect(await kw.stop()).toBe(0);
      }
    }
  });

  it('loads ioredis with KEYWARD_REDIS_URL and the YAML parser with a KEYWARD_CONFIG file (the list sees what is loaded)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'keyward-footprint-'));
    try {
      const file = join(dir, 'keyward.yaml');
      writeFileSync(file, 'logLevel: info\n');
      const loaded = await packagesLoadedBy({ KEYWARD_REDIS_URL: redis.url, KEYWARD_CONFIG: file });
      expect(loaded).toContain('ioredis');
      expect(loaded).toContain('yaml');
      expect(loaded).not.toContain('commander');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
