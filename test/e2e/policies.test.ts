import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { KeyState } from '../../src/gen/keyward/v1/api_key.pb';
import {
  CreateKeyRequest,
  CreatePolicyRequest,
  ListKeysRequest,
  UpdatePolicyRequest,
} from '../../src/gen/keyward/v1/key_admin_service.pb';
import { RefillPeriod, type Policy } from '../../src/gen/keyward/v1/policy.pb';
import { ValidateKeyRequest, ValidationCode, type ValidateKeyResponse } from '../../src/gen/keyward/v1/key_service.pb';
import { eventually } from '../support/health';
import { call, startKeyward, type KeywardProcess } from '../support/keyward-process';
import { startNats, type NatsServerHandle } from '../support/nats-server';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

const md = new Metadata();
let redis: RedisServerHandle;
let nats: NatsServerHandle;
let a: KeywardProcess;
let b: KeywardProcess;

beforeAll(async () => {
  [redis, nats] = await Promise.all([startRedis(), startNats()]);
  const env = { KEYWARD_REDIS_URL: redis.url, KEYWARD_NATS_URL: nats.url, KEYWARD_CACHE_TTL: '1h' };
  [a, b] = await Promise.all([startKeyward(env), startKeyward(env)]);
});
afterAll(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await Promise.allSettled([redis?.stop(), nats?.stop()]);
});

const sec = (s: number) => ({ seconds: s, nanos: 0 });
async function policy(p: Partial<Policy>, serviceDefault = true): Promise<Policy> {
  const res = await call(a.admin.createPolicy.bind(a.admin), CreatePolicyRequest.fromPartial({ policy: p, serviceDefault }), a.root);
  return res.policy!;
}
const create = (req: Partial<CreateKeyRequest>, kw = a) => call(kw.admin.createKey.bind(kw.admin), CreateKeyRequest.fromPartial(req), kw.root);
const validate = (kw: KeywardProcess, req: Partial<ValidateKeyRequest>): Promise<ValidateKeyResponse> =>
  call(kw.keys.validateKey.bind(kw.keys), ValidateKeyRequest.fromPartial(req), md);
async function statusOf(p: Promise<unknown>): Promise<[string, string]> {
  return p.then(
    () => ['OK', ''],
    (e: ServiceError) => [status[e.code], e.details],
  );
}

test('a rate limit of N per period with burst B admits at most N + B across two sidecars', async () => {
  await policy({ service: 'rl', name: 'api', rateLimits: [{ name: 'per-minute', limit: 20, period: sec(60), burst: 5 }] });
  const { secret } = await create({ service: 'rl' });
  const answers = await Promise.all(
    Array.from({ length: 200 }, (_, i) => validate(i % 2 ? a : b, { key: secret })),
  );
  const admitted = answers.filter((r) => r.valid).length;
  expect(admitted).toBeGreaterThanOrEqual(6); // B + 1 at once
  expect(admitted).toBeLessThanOrEqual(25); // N + B in any window of one period
  const denied = answers.find((r) => r.code === ValidationCode.VALIDATION_CODE_RATE_LIMITED)!;
  expect(denied.reason).toBe('rate_limit:per-minute');
  expect(denied.limits!.rateLimits[0]).toMatchObject({ name: 'per-minute', limit: 20, remaining: 0 });
  expect(denied.limits!.rateLimits[0].resetTime!.getTime()).toBeGreaterThan(Date.now());
});

test('credits are never overspent: admitted costs plus what remains equal the starting credits', async () => {
  await policy({ service: 'cr', name: 'metered', credits: { initial: 100, refill: { period: RefillPeriod.REFILL_PERIOD_MONTHLY, amount: 100 } } });
  const { key, secret } = await create({ service: 'cr' });
  const costs = Array.from({ length: 120 }, (_, i) => 1 + (i % 3));
  const answers = await Promise.all(costs.map((cost, i) => validate(i % 2 ? a : b, { key: secret, cost })));
  const spent = answers.reduce((sum, r, i) => sum + (r.valid ? costs[i] : 0), 0);
  const got = await call(a.admin.getKey.bind(a.admin), { keyId: key!.id }, a.root);
  const remaining = got.key!.creditsRemaining!;
  expect(remaining).toBeGreaterThanOrEqual(0);
  expect(spent + remaining).toBe(100);
  expect(remaining).toBeLessThan(3); // everything that fitted was spent
  const exhausted = answers.find((r) => r.code === ValidationCode.VALIDATION_CODE_USAGE_EXCEEDED)!;
  expect(exhausted.reason).toBe('credits_exhausted');
  expect(exhausted.limits!.creditsRemaining).toBeLessThan(3);
  // A top-up through UpdateKey.
  await call(a.admin.updateKey.bind(a.admin), { keyId: key!.id, name: '', scopes: [], metadata: {}, expireTime: undefined, enabled: false, policyId: '', credits: 10, updateMask: ['credits'] }, a.root);
  expect((await validate(b, { key: secret, cost: 10 })).valid).toBe(true);
  expect((await validate(a, { key: secret })).code).toBe(ValidationCode.VALIDATION_CODE_USAGE_EXCEEDED);
});

test('the service quota holds under concurrent creates on two sidecars', async () => {
  await policy({ service: 'quota', name: 'small', maxActiveKeys: 10 });
  const results = await Promise.all(Array.from({ length: 30 }, (_, i) => statusOf(create({ service: 'quota' }, i % 2 ? a : b))));
  expect(results.filter(([s]) => s === 'OK')).toHaveLength(10);
  const refused = results.filter(([s]) => s !== 'OK');
  expect(refused.every(([s, d]) => s === 'RESOURCE_EXHAUSTED' && d.includes('max_active_keys'))).toBe(true);
  const active = await call(a.admin.listKeys.bind(a.admin), ListKeysRequest.fromPartial({ service: 'quota', state: KeyState.KEY_STATE_ACTIVE, pageSize: 100 }), a.root);
  expect(active.keys).toHaveLength(10);
});

test('compliance rules refuse non-compliant keys with FAILED_PRECONDITION naming the rule, writing nothing', async () => {
  await policy({ service: 'comp', name: 'strict', requireExpiry: true, maxLifetime: sec(86_400), allowedScopes: ['orders:*'] });
  const inADay = (d: number) => new Date(Date.now() + d * 86_400_000);
  expect(await statusOf(create({ service: 'comp', scopes: ['orders:read'] }))).toEqual(['FAILED_PRECONDITION', expect.stringContaining('require_expiry')]);
  expect(await statusOf(create({ service: 'comp', scopes: ['billing:read'], expireTime: inADay(0.5) }))).toEqual(['FAILED_PRECONDITION', expect.stringContaining('allowed_scopes')]);
  expect(await statusOf(create({ service: 'comp', scopes: ['orders:read'], expireTime: inADay(2) }))).toEqual(['FAILED_PRECONDITION', expect.stringContaining('max_lifetime')]);
  const listed = await call(a.admin.listKeys.bind(a.admin), ListKeysRequest.fromPartial({ service: 'comp' }), a.root);
  expect(listed.keys).toHaveLength(0);
  expect(await statusOf(create({ service: 'comp', scopes: ['orders:read'], expireTime: inADay(0.5) }))).toEqual(['OK', '']);
});

test('network and time rules answer FORBIDDEN with a reason; policy changes reach the other sidecar', async () => {
  const p = await policy({ service: 'net', name: 'office', allowedCidrs: ['10.0.0.0/8', '2001:db8::/32'] });
  const { secret } = await create({ service: 'net' });
  expect((await validate(b, { key: secret, clientIp: '10.1.2.3' })).valid).toBe(true);
  expect((await validate(b, { key: secret, clientIp: '2001:db8::1' })).valid).toBe(true);
  expect(await validate(b, { key: secret, clientIp: '192.168.1.1' })).toMatchObject({ code: ValidationCode.VALIDATION_CODE_FORBIDDEN, reason: 'ip_not_allowed' });
  expect(await validate(b, { key: secret })).toMatchObject({ code: ValidationCode.VALIDATION_CODE_FORBIDDEN, reason: 'client_ip_required' });

  // Tighten the policy through sidecar a: sidecar b (policy cache TTL 1 h) hears of it by event.
  const today = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'][new Date().getUTCDay()];
  const otherDays = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'].filter((d) => d !== today);
  await call(a.admin.updatePolicy.bind(a.admin), UpdatePolicyRequest.fromPartial({
    policy: { id: p.id, timeZone: 'UTC', timeWindows: [{ days: otherDays, start: '00:00', end: '24:00' }] },
    updateMask: ['time_zone', 'time_windows'],
  }), a.root);
  await eventually(async () => (await validate(b, { key: secret, clientIp: '10.1.2.3' })).reason === 'outside_time_window', 5_000);
  await call(a.admin.updatePolicy.bind(a.admin), UpdatePolicyRequest.fromPartial({
    policy: { id: p.id, timeWindows: [{ days: [today], start: '00:00', end: '24:00' }] },
    updateMask: ['time_windows'],
  }), a.root);
  await eventually(async () => (await validate(b, { key: secret, clientIp: '10.1.2.3' })).valid, 5_000);
});

test('a key whose own policy is deleted is refused, not loosened', async () => {
  await policy({ service: 'own', name: 'default' });
  const mine = await policy({ service: 'own', name: 'narrow', allowedCidrs: ['10.0.0.0/8'] }, false);
  const { secret } = await create({ service: 'own', policyId: mine.id });
  expect((await validate(b, { key: secret, clientIp: '10.0.0.1' })).valid).toBe(true);
  await call(a.admin.deletePolicy.bind(a.admin), { policyId: mine.id }, a.root);
  await eventually(async () => (await validate(b, { key: secret, clientIp: '10.0.0.1' })).reason === 'policy_missing', 5_000);
  expect(await statusOf(create({ service: 'own', policyId: mine.id }))).toEqual(['INVALID_ARGUMENT', expect.stringContaining('policy_id')]);
});

test('policy inputs are checked and named', async () => {
  const bad = (p: Partial<Policy>) => statusOf(call(a.admin.createPolicy.bind(a.admin), CreatePolicyRequest.fromPartial({ policy: { service: 'inputs', ...p } }), a.root));
  expect(await bad({ allowedCidrs: ['10.0.0.0/33'] })).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/^policy\.allowed_cidrs\[0\]/)]);
  expect(await bad({ timeZone: 'Mars/Olympus' })).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/^policy\.time_zone/)]);
  expect(await bad({ timeWindows: [{ days: ['mon'], start: '18:00', end: '09:00' }] })).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/^policy\.time_windows\[0\]/)]);
  expect(await bad({ rateLimits: [{ name: 'x', limit: 0, period: sec(60), burst: 0 }] })).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/^policy\.rate_limits\[0\]\.limit/)]);
  expect(await bad({ rateLimits: [{ name: 'Bad Name', limit: 1, period: sec(60), burst: 0 }] })).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/^policy\.rate_limits\[0\]\.name/)]);
  expect(await bad({ service: 'Bad' })).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/^policy\.service/)]);
  const noPolicy = UpdatePolicyRequest.fromPartial({ updateMask: ['name'] });
  expect(await statusOf(call(a.admin.updatePolicy.bind(a.admin), noPolicy, a.root))).toEqual(['INVALID_ARGUMENT', expect.stringMatching(/^policy: is required/)]);
  const list = await call(a.admin.listPolicies.bind(a.admin), { service: 'inputs', pageSize: 0, pageToken: '' }, a.root);
  expect(list.policies).toHaveLength(0);
});
