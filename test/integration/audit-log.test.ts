import Redis from 'ioredis';
import { MemoryAuditLog } from '../../src/adapters/audit/memory-audit-log';
import { RedisAuditLog } from '../../src/adapters/audit/redis-audit-log';
import { startRedis, type RedisServerHandle } from '../support/redis-server';
import { describeAuditLogContract } from './audit-log.contract';

describeAuditLogContract('memory', async () => ({
  log: new MemoryAuditLog({ maxEntries: 10_000, retentionMs: 86_400_000, now: Date.now }),
  cleanup: async () => {},
}));

let redis: RedisServerHandle;
let client: Redis;
beforeAll(async () => {
  redis = await startRedis();
  client = new Redis(redis.url);
});
afterAll(async () => {
  client.disconnect();
  await redis.stop();
});

describeAuditLogContract('redis', async () => {
  await client.flushall();
  return { log: new RedisAuditLog({ redis: client, retentionMs: 86_400_000, maxEntries: 10_000 }), cleanup: async () => {} };
});

describe('audit retention', () => {
  test('memory: entries beyond the cap or older than the retention are dropped', async () => {
    let now = 1_000_000;
    const log = new MemoryAuditLog({ maxEntries: 5, retentionMs: 10_000, now: () => now });
    const e = (n: number) => ({ time: now, service: 's', keyId: '', type: 'key.created', actor: 'root', detail: { n: String(n) } });
    for (let i = 0; i < 8; i++) await log.append([e(i)]);
    expect((await log.list({ types: [], limit: 100 })).entries.map((x) => x.detail.n)).toEqual(['7', '6', '5', '4', '3']);
    now += 20_000;
    await log.append([e(99)]);
    expect((await log.list({ types: [], limit: 100 })).entries.map((x) => x.detail.n)).toEqual(['99']);
  });

  test('redis: every entry is in the service stream and the global one, all keys in the {kw} slot', async () => {
    await client.flushall();
    const log = new RedisAuditLog({ redis: client, retentionMs: 86_400_000, maxEntries: 10_000 });
    await log.append([{ time: 0, service: 'orders', keyId: '', type: 'key.created', actor: 'root', detail: {} }]);
    expect((await client.keys('*')).sort()).toEqual(['{kw}:audit', '{kw}:audit:s:orders']);
    const [[id]] = (await client.xrange('{kw}:audit', '-', '+')) as [string, string[]][];
    const [[sid]] = (await client.xrange('{kw}:audit:s:orders', '-', '+')) as [string, string[]][];
    expect(sid).toBe(id);
  });

  test('redis: a scan budget bounds one call and hands back a cursor', async () => {
    await client.flushall();
    const log = new RedisAuditLog({ redis: client, retentionMs: 86_400_000, maxEntries: 10_000, scanBudget: 10 });
    const many = Array.from({ length: 50 }, () => ({ time: 0, service: 'orders', keyId: 'key_X', type: 'key.created', actor: 'root', detail: {} }));
    await log.append([{ time: 0, service: 'orders', keyId: 'key_Y', type: 'key.revoked', actor: 'root', detail: {} }, ...many]);
    const first = await log.list({ types: ['key.revoked'], limit: 10 });
    expect(first.entries).toEqual([]);
    expect(first.nextBefore).toBeDefined();
    let before = first.nextBefore;
    const found = [];
    while (before !== undefined) {
      const page = await log.list({ types: ['key.revoked'], limit: 10, before });
      found.push(...page.entries);
      before = page.nextBefore;
    }
    expect(found.map((e) => e.keyId)).toEqual(['key_Y']);
  });
});
