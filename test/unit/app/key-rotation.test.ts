import { randomBytes } from 'node:crypto';
import { KeyAdmin } from '../../../src/app/key-admin';
import { KeyIdGenerator } from '../../../src/domain/key-id';
import { AesGcmSealer } from '../../../src/adapters/crypto/aes-gcm-sealer';
import { FailedPreconditionError, InvalidArgumentError } from '../../../src/domain/errors';
import { hashKey } from '../../../src/domain/key-hash';
import { toValidateKeyResponse } from '../../../src/codec/proto-mapping';
import { DAY, HOUR, lifecycleEnv, MINUTE, root, SECOND, T0 } from '../helpers/lifecycle-env';

async function caught(p: Promise<unknown>): Promise<unknown> {
  try {
    await p;
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection');
}

describe('manual rotation (RotateKey)', () => {
  it('issues a successor with the same configuration, returns its secret once, and links the two', async () => {
    const env = lifecycleEnv();
    const { record: old } = await env.createKey({ expiresAt: T0 + 30 * DAY, credits: 50, metadata: { plan: 'pro' }, scopes: ['orders:read', 'orders:write'] });
    env.clock.advance(10 * DAY);
    const { retired, successor, secret } = await env.admin.rotate(root, old.id, 2 * HOUR);

    expect(hashKey(secret)).toBe(successor.hash);
    expect(successor).toMatchObject({
      service: 'orders',
      owner: 'team-a',
      name: 'checkout',
      scopes: ['orders:read', 'orders:write'],
      metadata: { plan: 'pro' },
      credits: 50,
      state: 'active',
      rotatedFrom: old.id,
      limitsId: old.id, // rate limits and credits are shared, not copied
      createdAt: T0 + 10 * DAY,
      expiresAt: T0 + 40 * DAY, // the same lifetime length
    });
    expect(retired).toMatchObject({ id: old.id, rotatedTo: successor.id, rotatedAt: T0 + 10 * DAY, graceEndsAt: T0 + 10 * DAY + 2 * HOUR, state: 'active' });
    expect(await env.get(old.id)).toEqual(retired);
    expect(await env.get(successor.id)).toEqual(successor);
    // The secret is in no stored record and no event.
    const stored = JSON.stringify([await env.get(old.id), await env.get(successor.id), await env.events(), await env.auditLog.list({ types: [], limit: 100 })]);
    expect(stored).not.toContain(secret);
    expect((await env.events()).map((e) => e.type)).toEqual(['key.created', 'key.created', 'key.rotated']);
  });

  it('the old key answers VALID and superseded (successor id, grace end) during the grace period, then ROTATED', async () => {
    const env = lifecycleEnv();
    const { record: old } = await env.createKey();
    const { successor } = await env.admin.rotate(root, old.id, HOUR);
    const during = toValidateKeyResponse(await env.validate(old.id));
    expect(during).toMatchObject({ valid: true, superseded: true, successorKeyId: successor.id, graceEndTime: new Date(T0 + HOUR) });
    expect(toValidateKeyResponse(await env.validate(successor.id))).toMatchObject({ valid: true, superseded: false });

    env.clock.advance(HOUR - 1);
    expect((await env.validate(old.id)).code).toBe('VALID');
    env.clock.advance(1);
    // Answered from the record's grace end, whether or not the scheduler has run.
    expect((await env.validate(old.id)).code).toBe('ROTATED');
    await env.scheduler('a').tick();
    expect((await env.get(old.id)).state).toBe('rotated');
    expect((await env.validate(old.id)).code).toBe('ROTATED');
    expect((await env.validate(successor.id)).code).toBe('VALID');
  });

  it('a grace period of zero retires the old key at once', async () => {
    const env = lifecycleEnv();
    const { record: old } = await env.createKey();
    const { retired } = await env.admin.rotate(root, old.id, 0);
    expect(retired.state).toBe('rotated');
    expect((await env.validate(old.id)).code).toBe('ROTATED');
    expect((await env.get(old.id)).dueAt).toBeUndefined(); // nothing left for the scheduler
  });

  it('without a grace period, uses the policy\'s, else the configured default', async () => {
    const env = lifecycleEnv({ defaultGracePeriodMs: 3 * HOUR });
    const { record: a } = await env.createKey();
    expect((await env.admin.rotate(root, a.id)).retired.graceEndsAt).toBe(T0 + 3 * HOUR);
    await env.rotationPolicy(30 * DAY, { strategy: 'notify', noticeMs: DAY, gracePeriodMs: 5 * MINUTE });
    const { record: b } = await env.createKey();
    expect((await env.admin.rotate(root, b.id)).retired.graceEndsAt).toBe(T0 + 5 * MINUTE);
  });

  it('refuses to rotate a superseded key, naming its successor', async () => {
    const env = lifecycleEnv();
    const { record: old } = await env.createKey();
    const { successor } = await env.admin.rotate(root, old.id, HOUR);
    const err = await caught(env.admin.rotate(root, old.id, HOUR));
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as Error).message).toContain(`already rotated; its successor is ${successor.id}`);
    // The successor itself can be rotated (a chain keeps the first key's limits id).
    const next = await env.admin.rotate(root, successor.id, HOUR);
    expect(next.successor.limitsId).toBe(old.id);
  });

  it('refuses a grace period over 90 days, naming the field', async () => {
    const env = lifecycleEnv();
    const { record } = await env.createKey();
    const err = await caught(env.admin.rotate(root, record.id, 91 * DAY));
    expect(err).toBeInstanceOf(InvalidArgumentError);
    expect((err as InvalidArgumentError).field).toBe('grace_period');
  });

  it('a manual rotation seals nothing: there is no secret to claim', async () => {
    const env = lifecycleEnv();
    const { record } = await env.createKey();
    const { successor } = await env.admin.rotate(root, record.id, HOUR);
    const err = await caught(env.admin.claimRotatedSecret(root, successor.id));
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as Error).message).toMatch(/already claimed, or was never sealed/);
  });
});

describe('automatic rotation (policy strategy auto) and ClaimRotatedSecret', () => {
  async function autoRotated(grace = 2 * HOUR) {
    const env = lifecycleEnv();
    await env.rotationPolicy(30 * DAY, { strategy: 'auto', noticeMs: 0, gracePeriodMs: grace });
    const { record: old, secret: oldSecret } = await env.createKey();
    expect(old.dueAt).toBe(T0 + 30 * DAY);
    env.clock.set(T0 + 30 * DAY);
    const tick = await env.scheduler('a').tick();
    expect(tick.steps).toBe(1);
    const retired = await env.get(old.id);
    const successor = await env.get(retired.rotatedTo!);
    return { env, old, oldSecret, retired, successor };
  }

  it('rotates the key at its maximum age, with the policy\'s grace period and events', async () => {
    const { env, old, retired, successor } = await autoRotated();
    expect(retired).toMatchObject({ rotatedTo: successor.id, rotatedAt: T0 + 30 * DAY, graceEndsAt: T0 + 30 * DAY + 2 * HOUR, state: 'active', dueAt: T0 + 30 * DAY + 2 * HOUR });
    expect(successor).toMatchObject({ rotatedFrom: old.id, createdAt: T0 + 30 * DAY, dueAt: T0 + 60 * DAY, state: 'active' });
    const events = (await env.events()).filter((e) => e.type !== 'policy.created');
    expect(events.map((e) => [e.type, e.keyId])).toEqual([
      ['key.created', old.id],
      ['key.created', successor.id],
      ['key.rotated', old.id],
    ]);
    expect(events[2].body).toMatchObject({ actor: 'keyward', keyRotated: { successorKeyId: successor.id } });
    expect(await env.auditTypes(old.id)).toEqual(['key.created', 'key.rotated']);
    expect((await env.validate(old.id)).code).toBe('VALID');
  });

  it('the sealed secret is claimable once, by the successor\'s or the old key\'s id, and a second claim is refused', async () => {
    const { env, old, successor } = await autoRotated();
    const claimed = await env.admin.claimRotatedSecret(root, old.id);
    expect(claimed.record.id).toBe(successor.id);
    expect(hashKey(claimed.secret)).toBe(successor.hash);
    const again = await caught(env.admin.claimRotatedSecret(root, successor.id));
    expect(again).toBeInstanceOf(FailedPreconditionError);
    expect((again as Error).message).toMatch(/already claimed/);
    expect(await env.auditTypes(successor.id)).toContain('key.secret_claimed');
  });

  it('a claim on a sidecar with another KEK fails clearly and keeps the sealed copy for a later claim', async () => {
    const { env, successor } = await autoRotated();
    const otherKek = new KeyAdmin({ store: env.memoryStore, clock: env.clock, ids: new KeyIdGenerator(), defaultPrefix: 'sk', sealer: new AesGcmSealer(randomBytes(32)) });
    const err = await caught(otherKek.claimRotatedSecret(root, successor.id));
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as Error).message).toMatch(/cannot be opened here: sealed under another key-encryption key/);
    const claimed = await env.admin.claimRotatedSecret(root, successor.id);
    expect(hashKey(claimed.secret)).toBe(successor.hash);
  });

  it('two concurrent claims: exactly one gets the secret', async () => {
    const { env, successor } = await autoRotated();
    const results = await Promise.allSettled([env.admin.claimRotatedSecret(root, successor.id), env.admin.claimRotatedSecret(root, successor.id)]);
    expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    const refused = results.find((r) => r.status === 'rejected') as PromiseRejectedResult;
    expect(refused.reason).toBeInstanceOf(FailedPreconditionError);
  });

  it('a claim after the grace period is refused, and the sealed copy is destroyed', async () => {
    const { env, successor } = await autoRotated(HOUR);
    env.clock.advance(HOUR);
    const err = await caught(env.admin.claimRotatedSecret(root, successor.id));
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as Error).message).toMatch(/grace period .* is over/);
    expect(await env.memoryStore.takeSealedSecret(successor.id)).toBeUndefined();
  });

  it('the sealed blob never holds the secret in clear, and opens only under the same KEK and key id', async () => {
    const env = lifecycleEnv();
    await env.rotationPolicy(30 * DAY, { strategy: 'auto', noticeMs: 0, gracePeriodMs: HOUR });
    const { record: old } = await env.createKey();
    let sealedBlob: string | undefined;
    const rotate = env.memoryStore.rotate.bind(env.memoryStore);
    env.memoryStore.rotate = async (w, o) => {
      sealedBlob = w.sealed?.sealed;
      return rotate(w, o);
    };
    env.clock.set(T0 + 30 * DAY);
    await env.scheduler('a').tick();
    const successor = await env.get((await env.get(old.id)).rotatedTo!);
    const { secret } = await env.admin.claimRotatedSecret(root, successor.id);
    expect(sealedBlob).toBeDefined();
    expect(sealedBlob).not.toContain(secret);
    expect(sealedBlob).not.toContain(secret.slice(3, 20));
    expect(Buffer.from(sealedBlob!.split('.')[2], 'base64url').toString('latin1')).not.toContain(secret.slice(3, 20));
    expect(env.sealer!.open(sealedBlob!, successor.id)).toBe(secret);
    expect(() => env.sealer!.open(sealedBlob!, old.id)).toThrow();
    expect(() => new AesGcmSealer(Buffer.alloc(32, 7)).open(sealedBlob!, successor.id)).toThrow(/another key-encryption key/);
  });

  it('without a key-encryption key, an auto policy is refused at creation with a clear message', async () => {
    const env = lifecycleEnv({ sealer: false });
    const err = await caught(env.rotationPolicy(30 * DAY, { strategy: 'auto', noticeMs: 0 }));
    expect(err).toBeInstanceOf(FailedPreconditionError);
    expect((err as Error).message).toMatch(/key-encryption key.*KEYWARD_KEK or KEYWARD_KEK_FILE/);
    // notify needs no KEK
    await expect(env.rotationPolicy(30 * DAY, { strategy: 'notify', noticeMs: DAY })).resolves.toBeDefined();
  });

  it('a claim within the grace period still works after a scheduler retires nothing early', async () => {
    const { env, successor } = await autoRotated(HOUR);
    env.clock.advance(HOUR - SECOND);
    await env.scheduler('a').tick();
    const { record } = await env.admin.claimRotatedSecret(root, successor.id);
    expect(record.id).toBe(successor.id);
  });
});
