import { randomBytes } from 'node:crypto';
import { connect } from '@nats-io/transport-node';
import { parseKey } from '../../src/domain/key-format';
import { CreateKeyRequest, ListAuditEventsRequest, RotateKeyRequest } from '../../src/gen/keyward/v1/key_admin_service.pb';
import { ValidateKeyRequest, ValidationCode, type ValidateKeyResponse } from '../../src/gen/keyward/v1/key_service.pb';
import { eventually } from '../support/health';
import { call, startKeyward, type KeywardProcess } from '../support/keyward-process';
import { startNats, type NatsServerHandle } from '../support/nats-server';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

type NatsConnection = Awaited<ReturnType<typeof connect>>;

/*
 * Rotation across two sidecars sharing Redis and NATS, with an hour-long cache TTL so that only
 * events can tell sidecar B about a rotation done through sidecar A.
 */
const GRACE_MS = 1_500;
const KEK = randomBytes(32).toString('base64');
let redis: RedisServerHandle;
let nats: NatsServerHandle;
let spy: NatsConnection;
const messages: string[] = [];
let a: KeywardProcess;
let b: KeywardProcess;
const secrets: string[] = [];

const start = () =>
  startKeyward({
    KEYWARD_REDIS_URL: redis.url,
    KEYWARD_NATS_URL: nats.url,
    KEYWARD_CACHE_TTL: '1h',
    KEYWARD_KEK: KEK,
    KEYWARD_SCHEDULER_INTERVAL: '200ms',
    KEYWARD_LOG_LEVEL: 'debug',
    KEYWARD_NOTIFICATION_ROUTES: JSON.stringify([{ types: ['*'], priorities: [], channels: ['log'] }]),
  });

beforeAll(async () => {
  [redis, nats] = await Promise.all([startRedis(), startNats()]);
  spy = await connect({ servers: nats.url });
  const sub = spy.subscribe('>');
  void (async () => {
    for await (const m of sub) messages.push(new TextDecoder().decode(m.data));
  })();
  [a, b] = await Promise.all([start(), start()]);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await spy?.close();
  await Promise.allSettled([redis?.stop(), nats?.stop()]);
});

async function createKey(name: string) {
  const res = await call(a.admin.createKey.bind(a.admin), CreateKeyRequest.fromPartial({ service: 'orders', name, scopes: ['orders:read'] }), a.root);
  secrets.push(res.secret);
  return res;
}

const validate = (p: KeywardProcess, key: string): Promise<ValidateKeyResponse> =>
  call(p.keys.validateKey.bind(p.keys), ValidateKeyRequest.fromPartial({ key, service: 'orders' }), a.root);

async function rotate(keyId: string) {
  const res = await call(a.admin.rotateKey.bind(a.admin), RotateKeyRequest.fromPartial({ keyId, gracePeriod: { seconds: Math.floor(GRACE_MS / 1000), nanos: (GRACE_MS % 1000) * 1e6 } }), a.root);
  secrets.push(res.secret);
  return res;
}

it('a key rotated through sidecar A: B (cache warm) answers superseded during the grace period, ROTATED after', async () => {
  const { key, secret } = await createKey('grace');
  expect((await validate(b, secret)).code).toBe(ValidationCode.VALIDATION_CODE_VALID); // B caches it for an hour
  const { successor, secret: next, key: old } = await rotate(key!.id);
  expect(old!.rotatedToKeyId).toBe(successor!.id);
  const graceEnd = old!.graceEndTime!.getTime();

  await eventually(async () => (await validate(b, secret)).superseded, 5_000);
  const during = await validate(b, secret);
  if (Date.now() < graceEnd - 100) {
    expect(during).toMatchObject({ valid: true, superseded: true, successorKeyId: successor!.id, graceEndTime: new Date(graceEnd) });
  }
  expect((await validate(b, next)).code).toBe(ValidationCode.VALIDATION_CODE_VALID);
  await eventually(async () => (await validate(b, secret)).code === ValidationCode.VALIDATION_CODE_ROTATED, 5_000);
  expect(Date.now()).toBeGreaterThanOrEqual(graceEnd);
  expect((await validate(a, secret)).code).toBe(ValidationCode.VALIDATION_CODE_ROTATED);
  expect((await validate(b, next)).code).toBe(ValidationCode.VALIDATION_CODE_VALID);
  // The scheduler (on whichever sidecar holds the lease) retires it and says so.
  await eventually(async () => (await call(a.admin.getKey.bind(a.admin), { keyId: key!.id }, a.root)).key!.state === 4, 5_000);
}, 30_000);

it('rotation under load: every answer for the old and new key is right for its time', async () => {
  const { key, secret } = await createKey('load');
  type Answer = { key: 'old' | 'new'; sidecar: 'a' | 'b'; sent: number; received: number; code: ValidationCode; superseded: boolean };
  const answers: Answer[] = [];
  let stop = false;
  let next: string | undefined;
  const loop = async (p: KeywardProcess, sidecar: 'a' | 'b') => {
    while (!stop) {
      const which: 'old' | 'new' = next !== undefined && answers.length % 2 === 0 ? 'new' : 'old';
      const sent = Date.now();
      const res = await validate(p, which === 'old' ? secret : next!);
      answers.push({ key: which, sidecar, sent, received: Date.now(), code: res.code, superseded: res.superseded });
    }
  };
  const loops = [loop(a, 'a'), loop(b, 'b'), loop(a, 'a'), loop(b, 'b')];
  await new Promise((r) => setTimeout(r, 300));
  const rotateSent = Date.now();
  const rotated = await rotate(key!.id);
  const rotateReturned = Date.now();
  next = rotated.secret;
  const graceEnd = rotated.key!.graceEndTime!.getTime();
  await new Promise((r) => setTimeout(r, GRACE_MS + 1_000));
  stop = true;
  await Promise.all(loops);

  const VALID = ValidationCode.VALIDATION_CODE_VALID;
  const ROTATED = ValidationCode.VALIDATION_CODE_ROTATED;
  const wrong = answers.filter((x) => {
    if (x.key === 'new') return x.code !== VALID; // valid from the moment RotateKey returned
    if (x.received < rotateSent) return x.code !== VALID || x.superseded;
    if (x.received < graceEnd) return x.code !== VALID; // superseded once the sidecar knows
    if (x.sent >= graceEnd) return x.code !== ROTATED;
    return x.code !== VALID && x.code !== ROTATED; // in flight across the grace end
  });
  expect(wrong).toEqual([]);
  expect(answers.filter((x) => x.key === 'new').length).toBeGreaterThan(10);
  expect(answers.some((x) => x.key === 'old' && x.received < rotateSent)).toBe(true);
  expect(answers.some((x) => x.key === 'old' && x.sent > rotateReturned && x.received < graceEnd && x.superseded)).toBe(true);
  expect(answers.filter((x) => x.key === 'old' && x.sent >= graceEnd).length).toBeGreaterThan(10);
  // Per sidecar, the old key never goes back: not superseded -> superseded -> ROTATED.
  for (const s of ['a', 'b'] as const) {
    const seq = answers.filter((x) => x.key === 'old' && x.sidecar === s).sort((p, q) => p.received - q.received);
    const rank = (x: Answer) => (x.code === ROTATED ? 2 : x.superseded ? 1 : 0);
    for (let i = 1; i < seq.length; i++) if (seq[i].sent > seq[i - 1].received) expect(rank(seq[i])).toBeGreaterThanOrEqual(rank(seq[i - 1]));
  }
}, 30_000);

it('no secret of a rotation in events, logs or the audit trail', async () => {
  // let the relay publish and the log channel write what the rotations caused
  await eventually(() => messages.some((m) => m.includes('key.rotated')), 5_000);
  await new Promise((r) => setTimeout(r, 500));
  const audit = await call(a.admin.listAuditEvents.bind(a.admin), ListAuditEventsRequest.fromPartial({ service: 'orders', pageSize: 500 }), a.root);
  expect(audit.events.map((e) => e.type)).toEqual(expect.arrayContaining(['key.rotated', 'key.updated']));
  const haystacks = [
    ...messages,
    ...a.logs.map((l) => JSON.stringify(l)),
    ...b.logs.map((l) => JSON.stringify(l)),
    ...a.stderr,
    ...b.stderr,
    JSON.stringify(audit),
  ];
  const needles = secrets.flatMap((s) => [s, parseKey(s)!.random]).concat(KEK, Buffer.from(KEK, 'base64').toString('hex'));
  for (const n of needles) for (const h of haystacks) expect(h).not.toContain(n);
  expect(secrets.length).toBeGreaterThanOrEqual(4);
});
