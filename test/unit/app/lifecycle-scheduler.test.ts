import { stepEventId } from '../../../src/app/lifecycle-scheduler';
import { FencedError } from '../../../src/domain/errors';
import type { EventOutbox } from '../../../src/ports/event-outbox';
import type { KeyStore } from '../../../src/ports/key-store';
import { DAY, HOUR, lifecycleEnv, MINUTE, root, SECOND, T0 } from '../helpers/lifecycle-env';

/** A proxy of `inner` with some methods replaced. */
function wrap<T extends object>(inner: T, overrides: Partial<Record<keyof T, unknown>>): T {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop)) return overrides[prop as keyof T];
      const v = Reflect.get(target, prop, receiver);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
}

/** A failure the test arms, fired once by the next call it applies to. */
function oneShot(armed = false): { arm(): void; fire(applies?: boolean): boolean } {
  return {
    arm: () => {
      armed = true;
    },
    fire: (applies = true) => {
      if (!armed || !applies) return false;
      armed = false;
      return true;
    },
  };
}

/** A store whose next `replace` fails once `shot` is armed (a scheduler killed before that write). */
const failingReplace = (shot: ReturnType<typeof oneShot>) => (s: KeyStore) =>
  wrap<KeyStore>(s, {
    replace: async (...args: Parameters<KeyStore['replace']>) => {
      if (shot.fire()) throw new Error('killed');
      return s.replace(...args);
    },
  });

/** An outbox whose next append of a `type` event fails with `message` once `shot` is armed. */
const failingAppend = (shot: ReturnType<typeof oneShot>, type: string, message: string) => (o: EventOutbox) =>
  wrap<EventOutbox>(o, {
    append: async (e: Parameters<EventOutbox['append']>[0], opts: Parameters<EventOutbox['append']>[1]) => {
      if (shot.fire(e.type === type)) throw new Error(message);
      return o.append(e, opts);
    },
  });

const keyEvents = async (env: ReturnType<typeof lifecycleEnv>) => (await env.events()).filter((e) => e.type.startsWith('key.') && e.type !== 'key.created');

describe('notify strategy', () => {
  it('emits key.rotation_due at max age - notice, once, and expires the key at max age', async () => {
    const env = lifecycleEnv();
    await env.rotationPolicy(30 * DAY, { strategy: 'notify', noticeMs: 7 * DAY });
    const { record } = await env.createKey();
    expect(record.dueAt).toBe(T0 + 23 * DAY);
    const s = env.scheduler('a');

    env.clock.set(T0 + 23 * DAY - 1);
    expect((await s.tick()).steps).toBe(0);
    env.clock.set(T0 + 23 * DAY);
    expect((await s.tick()).steps).toBe(1);
    await s.tick();
    env.clock.advance(DAY);
    await s.tick();
    let events = await keyEvents(env);
    expect(events.map((e) => e.type)).toEqual(['key.rotation_due']);
    expect(events[0].body).toMatchObject({ actor: 'keyward', keyRotationDue: { dueTime: new Date(T0 + 30 * DAY).toISOString() } });
    expect(await env.get(record.id)).toMatchObject({ rotationNoticeAt: T0 + 23 * DAY, dueAt: T0 + 30 * DAY });
    expect((await env.validate(record.id)).code).toBe('VALID');

    env.clock.set(T0 + 30 * DAY);
    // EXPIRED at max age even before the scheduler runs.
    expect(await env.validate(record.id)).toMatchObject({ code: 'EXPIRED', reason: 'max_age' });
    await s.tick();
    await s.tick();
    events = await keyEvents(env);
    expect(events.map((e) => e.type)).toEqual(['key.rotation_due', 'key.expired']);
    expect(await env.get(record.id)).toMatchObject({ expiresAt: T0 + 30 * DAY, expiryHandledAt: T0 + 30 * DAY });
    expect((await env.get(record.id)).dueAt).toBeUndefined();
    expect((await env.validate(record.id)).code).toBe('EXPIRED');
    expect(await env.auditTypes(record.id)).toEqual(['key.created', 'key.rotation_due', 'key.expired']);
    expect(s.stats().steps).toMatchObject({ rotation_notice: 1, expire_at_max_age: 1, expire: 1 });
  });

  it('a key rotated before its max age does not expire at it; its successor gets a new max age', async () => {
    const env = lifecycleEnv();
    await env.rotationPolicy(30 * DAY, { strategy: 'notify', noticeMs: 7 * DAY });
    const { record } = await env.createKey();
    const s = env.scheduler('a');
    env.clock.set(T0 + 25 * DAY);
    await s.tick(); // notice
    const { successor } = await env.admin.rotate(root, record.id, 10 * DAY);
    env.clock.set(T0 + 30 * DAY);
    await s.tick();
    expect((await env.validate(record.id)).code).toBe('VALID'); // superseded, in its grace period: no max-age expiry
    expect((await env.get(record.id)).expiryHandledAt).toBeUndefined();
    env.clock.set(T0 + 35 * DAY);
    await s.tick();
    expect((await env.validate(record.id)).code).toBe('ROTATED');
    expect((await env.get(record.id)).state).toBe('rotated');
    expect((await env.validate(successor.id)).code).toBe('VALID');
    expect((await env.get(successor.id)).dueAt).toBe(T0 + 25 * DAY + 23 * DAY);
    expect((await keyEvents(env)).map((e) => e.type)).toEqual(['key.rotation_due', 'key.rotated', 'key.updated']);
  });
});

describe('scheduler steps', () => {
  it('expires a key at its expiry once, and retires a superseded key with key.updated (state)', async () => {
    const env = lifecycleEnv();
    const { record: a } = await env.createKey({ expiresAt: T0 + HOUR });
    const { record: b } = await env.createKey({ name: 'b' });
    await env.admin.rotate(root, b.id, 2 * HOUR);
    const s = env.scheduler('a');
    env.clock.set(T0 + 2 * HOUR);
    await s.tick();
    await s.tick();
    const events = await keyEvents(env);
    expect(events.map((e) => [e.type, e.keyId])).toEqual([
      ['key.rotated', b.id],
      ['key.expired', a.id],
      ['key.updated', b.id],
    ]);
    expect(events[2].body).toMatchObject({ keyUpdated: { changedFields: ['state'], key: { state: 'KEY_STATE_ROTATED' } } });
    expect((await env.get(b.id)).state).toBe('rotated');
    expect(await env.memoryStore.due(Number.MAX_SAFE_INTEGER, 10)).toEqual([]); // nothing left to do (no policy)
  });

  it('gives scheduler events deterministic, time-ordered evt_ ids', () => {
    const id = stepEventId('key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A', 'expire', T0, 'key.expired', 0);
    expect(id).toMatch(/^evt_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(stepEventId('key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A', 'expire', T0, 'key.expired', 0)).toBe(id);
    expect(stepEventId('key_01JD6Z3M8Q4ZC2N1XW7V5TBR9B', 'expire', T0, 'key.expired', 0)).not.toBe(id);
    expect(stepEventId('key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A', 'expire', T0 + 1, 'key.expired', 0) > id).toBe(true);
  });
});

describe('exclusion: two schedulers on one store', () => {
  it('exactly one rotation per due key when two schedulers race', async () => {
    const env = lifecycleEnv();
    await env.rotationPolicy(30 * DAY, { strategy: 'auto', noticeMs: 0, gracePeriodMs: HOUR });
    const ids: string[] = [];
    for (let i = 0; i < 20; i++) ids.push((await env.createKey({ name: `k${i}` })).record.id);
    const a = env.scheduler('a', { batchSize: 3 });
    const b = env.scheduler('b', { batchSize: 3 });
    env.clock.set(T0 + 30 * DAY);
    for (let round = 0; round < 10; round++) {
      await Promise.all([a.tick(), b.tick()]);
      env.clock.advance(SECOND);
    }
    for (const id of ids) {
      const r = await env.get(id);
      expect(r.rotatedTo).toBeDefined();
      expect((await env.get(r.rotatedTo!)).rotatedFrom).toBe(id);
    }
    const rotated = (await env.events()).filter((e) => e.type === 'key.rotated');
    expect(rotated).toHaveLength(20);
    expect(new Set(rotated.map((e) => e.keyId)).size).toBe(20);
    const page = await env.memoryStore.list({ service: 'orders', limit: 1000 });
    expect(page.records).toHaveLength(40); // 20 keys + 20 successors, no double rotation
    expect(a.stats().steps.auto_rotate + b.stats().steps.auto_rotate).toBe(20);
    expect([a.stats().ticksLeading, b.stats().ticksLeading].sort()).toEqual([0, 10]);
  });

  it('a scheduler whose lease was taken over cannot write (fenced), and the new holder finishes the work once', async () => {
    const env = lifecycleEnv();
    await env.rotationPolicy(30 * DAY, { strategy: 'auto', noticeMs: 0, gracePeriodMs: HOUR });
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await env.createKey({ name: `k${i}` })).record.id);
    const a = env.scheduler('a', { leaseTtlMs: 5 * SECOND });
    const b = env.scheduler('b', { leaseTtlMs: 5 * SECOND });
    env.clock.set(T0 + 30 * DAY);
    // A pauses after its second store read of a key (mid-tick) long enough to lose the lease to B.
    let reads = 0;
    const getById = env.memoryStore.getById.bind(env.memoryStore);
    env.memoryStore.getById = async (id) => {
      const r = await getById(id);
      if (++reads === 2) {
        env.clock.advance(6 * SECOND);
        await b.tick();
      }
      return r;
    };
    await a.tick();
    env.memoryStore.getById = getById;
    expect(a.stats().aborted).toBe(1);
    await b.tick();
    for (const id of ids) expect((await env.get(id)).rotatedTo).toBeDefined();
    const page = await env.memoryStore.list({ service: 'orders', limit: 1000 });
    expect(page.records).toHaveLength(12);
    expect((await env.events()).filter((e) => e.type === 'key.rotated')).toHaveLength(6);
    await expect(env.memoryStore.replace(await env.get(ids[0]), (await env.get(ids[0])).version, { fence: { lease: 'scheduler', value: 'a:1' } })).rejects.toBeInstanceOf(FencedError);
  });
});

describe('crash between a step\'s write and its events', () => {
  it('auto rotation: a scheduler killed after the rotation write; the next run emits the events once, with no second rotation', async () => {
    const shot = oneShot();
    const env = lifecycleEnv({ wrapOutbox: failingAppend(shot, 'key.created', 'killed') });
    await env.rotationPolicy(30 * DAY, { strategy: 'auto', noticeMs: 0, gracePeriodMs: HOUR });
    const { record } = await env.createKey();
    env.clock.set(T0 + 30 * DAY);
    shot.arm();
    await env.scheduler('a').tick();
    const afterCrash = await env.get(record.id);
    expect(afterCrash.rotatedTo).toBeDefined(); // the rotation was written...
    expect(afterCrash.dueAt).toBe(afterCrash.rotatedAt); // ...and marked "events pending"
    expect((await env.events()).filter((e) => e.type === 'key.rotated')).toHaveLength(0);

    env.clock.advance(10 * SECOND); // the dead scheduler's lease runs out
    const b = env.scheduler('b');
    await b.tick();
    await b.tick();
    const rotated = (await env.events()).filter((e) => e.type === 'key.rotated');
    expect(rotated).toHaveLength(1);
    expect(rotated[0].body).toMatchObject({ keyRotated: { successorKeyId: afterCrash.rotatedTo } });
    expect((await env.events()).filter((e) => e.type === 'key.created')).toHaveLength(2);
    expect(b.stats().steps.auto_rotate).toBe(0); // no second rotation
    expect((await env.memoryStore.list({ service: 'orders', limit: 10 })).records).toHaveLength(2);
    expect((await env.get(record.id)).dueAt).toBe(afterCrash.graceEndsAt);
    expect(await env.auditTypes(record.id)).toEqual(['key.created', 'key.rotated']);
  });

  it('auto rotation: killed after emitting the events but before clearing the mark; the re-run adds no duplicate', async () => {
    const shot = oneShot();
    const env = lifecycleEnv({ wrapStore: failingReplace(shot) });
    await env.rotationPolicy(30 * DAY, { strategy: 'auto', noticeMs: 0, gracePeriodMs: HOUR });
    const { record } = await env.createKey();
    env.clock.set(T0 + 30 * DAY);
    shot.arm();
    await env.scheduler('a').tick();
    expect((await env.events()).filter((e) => e.type === 'key.rotated')).toHaveLength(1);
    const crashed = await env.get(record.id);
    expect(crashed.dueAt).toBe(crashed.rotatedAt); // the "events pending" mark outlived the crash
    await env.scheduler('a').tick(); // the deferred key is due again later
    env.clock.advance(2 * MINUTE);
    await env.scheduler('a').tick();
    expect((await env.events()).filter((e) => e.type === 'key.rotated')).toHaveLength(1);
    expect(await env.auditTypes(record.id)).toEqual(['key.created', 'key.rotated']);
    expect((await env.get(record.id)).dueAt).toBe(T0 + 30 * DAY + HOUR);
  });

  it('expiry: killed between the events and the record write; the next run completes it once', async () => {
    const shot = oneShot();
    const env = lifecycleEnv({ wrapStore: failingReplace(shot) });
    const { record } = await env.createKey({ expiresAt: T0 + HOUR });
    env.clock.set(T0 + HOUR);
    shot.arm();
    await env.scheduler('a').tick();
    expect((await env.get(record.id)).expiryHandledAt).toBeUndefined();
    env.clock.advance(2 * MINUTE); // past the defer time
    await env.scheduler('b').tick();
    await env.scheduler('b').tick();
    expect((await env.get(record.id)).expiryHandledAt).toBeDefined();
    expect((await keyEvents(env)).map((e) => e.type)).toEqual(['key.expired']);
    expect(await env.auditTypes(record.id)).toEqual(['key.created', 'key.expired']);
  });

  it('expiry: an outbox failure leaves the step undone, and the retry emits it once', async () => {
    const env = lifecycleEnv({ wrapOutbox: failingAppend(oneShot(true), 'key.expired', 'outbox down') });
    const { record } = await env.createKey({ expiresAt: T0 + HOUR });
    env.clock.set(T0 + HOUR);
    await env.scheduler('a').tick();
    expect((await env.get(record.id)).expiryHandledAt).toBeUndefined();
    // The audit entry was written on the first try; the re-run must not add another.
    env.clock.advance(2 * MINUTE);
    await env.scheduler('a').tick();
    expect((await keyEvents(env)).map((e) => e.type)).toEqual(['key.expired']);
    expect(await env.auditTypes(record.id)).toEqual(['key.created', 'key.expired']);
  });
});

describe('bounded batches', () => {
  it('10k keys due at once expire in batches of the configured size over a few ticks', async () => {
    const env = lifecycleEnv();
    for (let i = 0; i < 10_000; i++) await env.createKey({ name: `k${i}`, expiresAt: T0 + HOUR + (i % 7) });
    env.clock.set(T0 + 2 * HOUR);
    const s = env.scheduler('a', { batchSize: 500, maxBatchesPerTick: 4 });
    const ticks: (readonly number[])[] = [];
    for (let i = 0; i < 10; i++) {
      const t = await s.tick();
      ticks.push(t.batchSizes);
      if (t.steps === 0) break;
    }
    expect(ticks.slice(0, 5)).toEqual([
      [500, 500, 500, 500],
      [500, 500, 500, 500],
      [500, 500, 500, 500],
      [500, 500, 500, 500],
      [500, 500, 500, 500],
    ]);
    expect(ticks[5]).toEqual([0]);
    expect(s.stats().steps.expire).toBe(10_000);
    expect((await env.events()).filter((e) => e.type === 'key.expired')).toHaveLength(10_000);
    expect(await env.memoryStore.due(Number.MAX_SAFE_INTEGER, 10)).toEqual([]);
  }, 60_000);

  it('a tick with nothing due reads one empty batch', async () => {
    const env = lifecycleEnv();
    for (let i = 0; i < 100; i++) await env.createKey({ name: `k${i}`, expiresAt: T0 + DAY });
    const t = await env.scheduler('a').tick();
    expect(t).toEqual({ leading: true, batchSizes: [0], steps: 0 });
  });
});

describe('policy changes: due times recomputed', () => {
  it('a rotation rule added to the default policy makes existing keys due (recompute job), in bounded pages', async () => {
    const env = lifecycleEnv();
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push((await env.createKey({ name: `k${i}` })).record.id);
    expect((await env.get(ids[0])).dueAt).toBeUndefined();
    const policy = await env.rotationPolicy(30 * DAY, { strategy: 'notify', noticeMs: DAY });
    const s = env.scheduler('a', { batchSize: 10, maxBatchesPerTick: 1 });
    s.recompute('orders'); // what the sidecar does on the policy.created event
    await s.tick();
    expect(s.stats().recomputed).toBe(10);
    expect(s.pendingRecomputes()).toEqual(['orders']);
    await s.tick();
    await s.tick();
    expect(s.pendingRecomputes()).toEqual([]);
    for (const id of ids) expect((await env.get(id)).dueAt).toBe(T0 + 29 * DAY);

    // max age shortened: recomputed again; the scheduler then acts at the new time
    await env.policyAdmin.update(root, policy.id, { ...policy, maxActiveKeys: 0, maxAgeMs: 10 * DAY, rotation: { strategy: 'notify', noticeMs: DAY } }, ['max_age'], true);
    s.recompute('orders');
    for (let i = 0; i < 3; i++) await s.tick();
    for (const id of ids) expect((await env.get(id)).dueAt).toBe(T0 + 9 * DAY);
    env.clock.set(T0 + 9 * DAY);
    await s.tick();
    await s.tick();
    await s.tick();
    expect((await env.events()).filter((e) => e.type === 'key.rotation_due')).toHaveLength(25);
  });

  it('a due time left too early (max age lengthened) is corrected when the key is found due', async () => {
    const env = lifecycleEnv();
    const policy = await env.rotationPolicy(10 * DAY, { strategy: 'notify', noticeMs: DAY });
    const { record } = await env.createKey();
    await env.policyAdmin.update(root, policy.id, { ...policy, maxActiveKeys: 0, maxAgeMs: 40 * DAY }, ['max_age'], true);
    env.clock.set(T0 + 9 * DAY);
    const s = env.scheduler('a');
    await s.tick();
    expect((await keyEvents(env)).map((e) => e.type)).toEqual([]);
    expect((await env.get(record.id)).dueAt).toBe(T0 + 39 * DAY);
    expect(s.stats().recomputed).toBe(1);
  });

  it('a scheduler without the lease keeps recompute jobs for when it takes over', async () => {
    const env = lifecycleEnv();
    await env.createKey();
    const a = env.scheduler('a');
    const b = env.scheduler('b');
    await a.tick();
    b.recompute('orders');
    await b.tick();
    expect(b.stats().ticksLeading).toBe(0);
    expect(b.pendingRecomputes()).toEqual(['orders']);
    await a.stop(); // releases the lease
    await b.tick();
    expect(b.pendingRecomputes()).toEqual([]);
  });
});
