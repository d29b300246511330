import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { CreateKeyRequest, ListKeysRequest } from '../../src/gen/keyward/v1/key_admin_service.pb';
import {
  BatchValidateKeysRequest,
  ValidateKeyRequest,
  ValidationCode,
  type ValidateKeyResponse,
} from '../../src/gen/keyward/v1/key_service.pb';
import { eventually, healthStatus } from '../support/health';
import { BIN, call, startKeyward, type KeywardProcess } from '../support/keyward-process';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

const run = promisify(execFile);
const md = new Metadata();

function validate(kw: KeywardProcess, key: string): Promise<ValidateKeyResponse> {
  return call(kw.keys.validateKey.bind(kw.keys), ValidateKeyRequest.fromPartial({ key }), md);
}
function create(kw: KeywardProcess, req: Partial<CreateKeyRequest>) {
  return call(kw.admin.createKey.bind(kw.admin), CreateKeyRequest.fromPartial(req), kw.root);
}
async function statusOf(p: Promise<unknown>): Promise<string> {
  return p.then(
    () => 'OK',
    (e: ServiceError) => status[e.code],
  );
}

describe('two sidecars sharing one Redis', () => {
  let redis: RedisServerHandle;
  let a: KeywardProcess;
  let b: KeywardProcess;

  beforeAll(async () => {
    redis = await startRedis();
    const env = { KEYWARD_REDIS_URL: redis.url, KEYWARD_CACHE_TTL: '300ms', KEYWARD_USAGE_FLUSH_INTERVAL: '200ms' };
    [a, b] = await Promise.all([startKeyward(env), startKeyward(env)]);
  });
  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await redis?.stop();
  });

  test('a key created through one validates on the other; a revoke reaches it within the cache TTL', async () => {
    const { key, secret } = await create(a, { service: 'orders', scopes: ['orders:read'] });
    expect((await validate(b, secret)).code).toBe(ValidationCode.VALIDATION_CODE_VALID);
    await call(a.admin.revokeKey.bind(a.admin), { keyId: key!.id, reason: 'test' }, a.root);
    expect((await validate(a, secret)).code).toBe(ValidationCode.VALIDATION_CODE_REVOKED); // its own write: at once
    await eventually(async () => (await validate(b, secret)).code === ValidationCode.VALIDATION_CODE_REVOKED, 2_000);
  });

  test('usage counts add up exactly across sidecars and are flushed on SIGTERM', async () => {
    const { key, secret } = await create(a, { service: 'orders' });
    const n = 137;
    const m = 59;
    await Promise.all([
      ...Array.from({ length: n }, () => validate(a, secret)),
      ...Array.from({ length: m }, () => validate(b, secret)),
    ]);
    await eventually(async () => {
      const got = await call(a.admin.getKey.bind(a.admin), { keyId: key!.id }, a.root);
      return got.key!.usageCount === n + m && got.key!.lastUsedTime !== undefined;
    }, 5_000);

    // Usage recorded just before SIGTERM reaches the store through the shutdown flush.
    const c = await startKeyward({ KEYWARD_REDIS_URL: redis.url, KEYWARD_USAGE_FLUSH_INTERVAL: '1h' });
    await Promise.all(Array.from({ length: 11 }, () => validate(c, secret)));
    expect(await c.stop()).toBe(0);
    const got = await call(a.admin.getKey.bind(a.admin), { keyId: key!.id }, a.root);
    expect(got.key!.usageCount).toBe(n + m + 11);
  });

  test('listing through either sidecar sees the same keys', async () => {
    for (let i = 0; i < 5; i++) await create(i % 2 ? a : b, { service: 'listing' });
    const fromA = await call(a.admin.listKeys.bind(a.admin), ListKeysRequest.fromPartial({ service: 'listing' }), a.root);
    const fromB = await call(b.admin.listKeys.bind(b.admin), ListKeysRequest.fromPartial({ service: 'listing' }), b.root);
    expect(fromA.keys.map((k) => k.id)).toEqual(fromB.keys.map((k) => k.id));
    expect(fromA.keys).toHaveLength(5);
  });
});

describe('Redis outage', () => {
  test('cached keys keep validating, unknown keys fail closed, readiness and admin writes follow Redis', async () => {
    const redis = await startRedis({ appendOnly: true }); // as in production: the data survives the restart
    const kw = await startKeyward({ KEYWARD_REDIS_URL: redis.url, KEYWARD_CACHE_TTL: '200ms', KEYWARD_CACHE_MAX_STALENESS: '1h' });
    try {
      await eventually(async () => (await healthStatus(kw.healthAddr)) === 'SERVING');
      expect(await healthStatus(kw.healthAddr, 'keyward.liveness')).toBe('SERVING');
      const known = await create(kw, { service: 'orders' });
      const unknown = await create(kw, { service: 'orders' });
      await call(kw.admin.deleteKey.bind(kw.admin), { keyId: unknown.key!.id }, kw.root);
      expect((await validate(kw, known.secret)).code).toBe(ValidationCode.VALIDATION_CODE_VALID);

      await redis.kill();
      await new Promise((r) => setTimeout(r, 300)); // past the cache TTL: answers now come from stale entries

      expect((await validate(kw, known.secret)).code).toBe(ValidationCode.VALIDATION_CODE_VALID);
      const neverSeen = await statusOf(validate(kw, unknown.secret));
      expect(neverSeen).toBe('UNAVAILABLE');
      const batch = await call(kw.keys.batchValidateKeys.bind(kw.keys), BatchValidateKeysRequest.fromPartial({
        requests: [{ key: known.secret }, { key: unknown.secret }, { key: 'garbage' }],
      }), md);
      expect(batch.responses.map((r) => r.code)).toEqual([
        ValidationCode.VALIDATION_CODE_VALID,
        ValidationCode.VALIDATION_CODE_UNAVAILABLE,
        ValidationCode.VALIDATION_CODE_MALFORMED, // decided offline, no store needed
      ]);
      expect(await statusOf(create(kw, { service: 'orders' }))).toBe('UNAVAILABLE');
      await eventually(async () => (await healthStatus(kw.healthAddr)) === 'NOT_SERVING', 5_000);
      expect(await healthStatus(kw.healthAddr, 'keyward.liveness')).toBe('SERVING');

      await redis.restart();
      await eventually(async () => (await healthStatus(kw.healthAddr)) === 'SERVING', 10_000);
      expect(await statusOf(create(kw, { service: 'orders' }))).toBe('OK');
      // Nothing half-written by the failed create: the key from before and the one made after.
      const page = await call(kw.admin.listKeys.bind(kw.admin), ListKeysRequest.fromPartial({ service: 'orders' }), kw.root);
      expect(page.keys).toHaveLength(2);
      expect((await validate(kw, unknown.secret)).code).toBe(ValidationCode.VALIDATION_CODE_NOT_FOUND);
    } finally {
      await kw.stop();
      await redis.stop();
    }
  });

  test('keyward starts while Redis is down and becomes ready when it appears', async () => {
    const redis = await startRedis();
    await redis.kill();
    const kw = await startKeyward({ KEYWARD_REDIS_URL: redis.url });
    try {
      expect(await healthStatus(kw.healthAddr)).toBe('NOT_SERVING');
      await redis.restart();
      await eventually(async () => (await healthStatus(kw.healthAddr)) === 'SERVING', 10_000);
    } finally {
      await kw.stop();
      await redis.stop();
    }
  });
});

describe('export and import', () => {
  test('a restore into an empty Redis brings back every key, idempotently, and no secret is in the file', async () => {
    const [source, target] = await Promise.all([startRedis(), startRedis()]);
    const dir = mkdtempSync(join(tmpdir(), 'keyward-backup-'));
    const file = join(dir, 'keys.jsonl');
    const kw = await startKeyward({ KEYWARD_REDIS_URL: source.url });
    try {
      const created = [];
      for (let i = 0; i < 30; i++) created.push(await create(kw, { service: i % 2 ? 'a' : 'b', metadata: { i: String(i) } }));
      await call(kw.admin.revokeKey.bind(kw.admin), { keyId: created[0].key!.id, reason: 'x' }, kw.root);

      const exported = await run(process.execPath, [BIN, 'export', '--redis-url', source.url, '-o', file]);
      expect(exported.stderr).toContain('exported 30 records');
      const text = readFileSync(file, 'utf8');
      expect(text.trim().split('\n')).toHaveLength(30);
      for (const c of created) expect(text).not.toContain(c.secret.slice(3));

      const first = await run(process.execPath, [BIN, 'import', '--redis-url', target.url, '-i', file]);
      expect(first.stderr).toContain('imported 30 records, 0 already present');
      const second = await run(process.execPath, [BIN, 'import', '--redis-url', target.url, '-i', file]);
      expect(second.stderr).toContain('imported 0 records, 30 already present');

      const restored = await startKeyward({ KEYWARD_REDIS_URL: target.url });
      try {
        expect((await validate(restored, created[0].secret)).code).toBe(ValidationCode.VALIDATION_CODE_REVOKED);
        const ok = await validate(restored, created[7].secret);
        expect(ok).toMatchObject({ code: ValidationCode.VALIDATION_CODE_VALID, keyId: created[7].key!.id, metadata: { i: '7' } });
      } finally {
        await restored.stop();
      }

      const bad = await new Promise<{ code: number | null; stderr: string }>((resolve) => {
        const child = execFile(process.execPath, [BIN, 'import', '--redis-url', target.url], (err, _out, stderr) =>
          resolve({ code: err ? (err as { code?: number }).code ?? 1 : 0, stderr }),
        );
        child.stdin!.end('{"id":"key_x"}\n');
      });
      expect(bad.code).toBe(1);
      expect(bad.stderr).toMatch(/import refused, nothing written: line 1: id/);
    } finally {
      await kw.stop();
      await Promise.all([source.stop(), target.stop()]);
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
