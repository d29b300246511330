import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { MemoryKeyStore } from '../../src/adapters/store/memory-key-store';
import { createRedisClient, RedisKeyStore, waitUntilReady } from '../../src/adapters/store/redis-key-store';
import { BackupFormatError, exportRecords, importRecords } from '../../src/app/backup';
import { runExport, runImport } from '../../src/cli/backup-commands';
import type { KeyRecord } from '../../src/domain/key-record';
import { startRedis, type RedisServerHandle } from '../support/redis-server';
import { makeRecord } from './key-store.contract';

const T0 = Date.UTC(2025, 0, 1);
const SEALED_FORM = 'v1.0a1b2c3d.SEALED-FORM-MUST-NOT-LEAVE-REDIS';

let server: RedisServerHandle;
let dir: string;
let store: RedisKeyStore;

beforeAll(async () => {
  server = await startRedis();
  dir = mkdtempSync(join(tmpdir(), 'keyward-backup-test-'));
});

beforeEach(async () => {
  const redis = createRedisClient(server.url);
  await waitUntilReady(redis);
  await redis.flushall();
  store = new RedisKeyStore({ redis });
  jest.spyOn(process.stderr, 'write').mockImplementation(() => true); // the commands' summaries
});

afterEach(async () => {
  jest.restoreAllMocks();
  await store.close();
});

afterAll(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/** A plain key, a key rotated with a grace period and a sealed secret, a retired key, and scheduler bookkeeping. */
async function seed(): Promise<KeyRecord[]> {
  const plain = makeRecord();
  const old = makeRecord({ expiresAt: T0 + 10_000, dueAt: T0 + 10_000, rotationNoticeAt: T0 + 1 });
  const retiredOld = makeRecord({ state: 'disabled' });
  await store.create(plain);
  await store.create(old);
  await store.create(retiredOld);
  const successor = makeRecord({ rotatedFrom: old.id, limitsId: old.id, expiresAt: T0 + 20_000, dueAt: T0 + 20_000 });
  const retired = { ...old, rotatedTo: successor.id, rotatedAt: T0 + 5, graceEndsAt: T0 + 500, dueAt: T0 + 500, version: 2 };
  await store.rotate({ retired, expectedVersion: 1, successor, sealed: { sealed: SEALED_FORM, expiresAt: Date.now() + 3_600_000 } });
  const next = makeRecord({ rotatedFrom: retiredOld.id, limitsId: retiredOld.id, expiryHandledAt: T0 + 7 });
  await store.rotate({
    retired: { ...retiredOld, state: 'rotated', rotatedTo: next.id, rotatedAt: T0 + 6, graceEndsAt: T0 + 6, version: 2 },
    expectedVersion: 1,
    successor: next,
  });
  const all: KeyRecord[] = [];
  for (const id of [plain.id, old.id, retiredOld.id, successor.id, next.id]) all.push((await store.getById(id))!);
  return all.sort((a, b) => (a.id < b.id ? -1 : 1));
}

describe('backup of rotated keys', () => {
  it('exports the rotation fields but never a sealed secret, and imports them back, idempotently', async () => {
    const records = await seed();
    const successorId = records.find((r) => r.rotatedFrom !== undefined && r.dueAt !== undefined)!.id;
    const file = join(dir, 'export.jsonl');
    await runExport({ redisUrl: server.url, output: file });

    const text = readFileSync(file, 'utf8');
    expect(text).not.toContain(SEALED_FORM);
    expect(text).not.toMatch(/sealed/i);
    const lines = text.trim().split('\n').map((l) => JSON.parse(l) as KeyRecord);
    expect(lines).toStrictEqual(records);
    expect(lines.some((r) => r.state === 'rotated' && r.rotatedTo !== undefined)).toBe(true);

    const before = await store.due(Number.MAX_SAFE_INTEGER, 100);
    expect(before).toHaveLength(2);
    const redis = createRedisClient(server.url);
    await waitUntilReady(redis);
    await redis.flushall();
    await redis.quit();

    await runImport({ redisUrl: server.url, input: file });
    for (const r of records) {
      expect(await store.getById(r.id)).toStrictEqual(r);
      expect(await store.getByHash(r.hash)).toStrictEqual(r);
    }
    // create re-indexes them: lists and the scheduler's due index as before
    expect(await store.due(Number.MAX_SAFE_INTEGER, 100)).toEqual(before);
    expect((await store.list({ state: 'rotated', limit: 10 })).records.map((r) => r.id)).toEqual(records.filter((r) => r.state === 'rotated').map((r) => r.id));
    // the sealed secret stayed behind
    expect(await store.takeSealedSecret(successorId)).toBeUndefined();

    const lines2: string[] = [];
    for await (const l of exportRecords(store)) lines2.push(l);
    expect(lines2.join('\n')).toBe(text.trim());

    // again: everything already present, nothing changed
    expect(await importRecords(store, text.split('\n'))).toEqual({ created: 0, skipped: records.length });
    for (const r of records) expect(await store.getById(r.id)).toStrictEqual(r);
  });

  it('refuses a malformed rotation field and writes nothing', async () => {
    const memory = new MemoryKeyStore();
    const good = JSON.stringify(makeRecord());
    const badLink = JSON.stringify({ ...makeRecord(), rotatedTo: 'not-a-key-id' });
    const badDue = JSON.stringify({ ...makeRecord(), dueAt: -5 });
    await expect(importRecords(memory, [good, badLink])).rejects.toThrow(new BackupFormatError(2, 'rotatedTo: Invalid string: must match pattern /^key_[0-9A-HJKMNP-TV-Z]{26}$/'));
    await expect(importRecords(memory, [good, badDue])).rejects.toBeInstanceOf(BackupFormatError);
    expect((await memory.list({ limit: 10 })).records).toEqual([]);
  });
});
