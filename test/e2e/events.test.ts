import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';

type NatsConnection = Awaited<ReturnType<typeof connect>>;
import { CreateKeyRequest, ListAuditEventsRequest, UpdateKeyRequest } from '../../src/gen/keyward/v1/key_admin_service.pb';
import { ValidateKeyRequest, ValidationCode } from '../../src/gen/keyward/v1/key_service.pb';
import { eventually } from '../support/health';
import { bearer, call, startKeyward, type KeywardProcess } from '../support/keyward-process';
import { startNats, type NatsServerHandle } from '../support/nats-server';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

const WEBHOOK_SECRET = 'e2e-webhook-secret-0123456789';
const md = new Metadata();

/** A webhook receiver that verifies signatures as docs/NOTIFICATIONS.md tells receivers to. */
interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  signatureValid: boolean;
}
function verify(headers: IncomingHttpHeaders, body: string): boolean {
  const ts = String(headers['keyward-timestamp'] ?? '');
  if (!/^\d+$/.test(ts) || Math.abs(Date.now() / 1000 - Number(ts)) > 300) return false;
  const expected = Buffer.from(createHmac('sha256', WEBHOOK_SECRET).update(`${ts}.${body}`).digest('hex'));
  return String(headers['keyward-signature'] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.startsWith('v1='))
    .some((s) => {
      const got = Buffer.from(s.slice(3));
      return got.length === expected.length && timingSafeEqual(got, expected);
    });
}

let redis: RedisServerHandle;
let nats: NatsServerHandle;
let receiver: Server;
const deliveries: Delivery[] = [];
let spy: NatsConnection;
const published: { subject: string; data: string; headers: string }[] = [];
let a: KeywardProcess;
let b: KeywardProcess;
const secrets: string[] = [];

async function start(): Promise<KeywardProcess> {
  const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
  return startKeyward({
    KEYWARD_REDIS_URL: redis.url,
    KEYWARD_NATS_URL: nats.url,
    KEYWARD_CACHE_TTL: '1h', // only events can tell the other sidecar
    KEYWARD_WEBHOOKS: JSON.stringify([{ name: 'ops', url, secret: WEBHOOK_SECRET, maxAttempts: 3 }]),
    KEYWARD_NOTIFICATION_ROUTES: JSON.stringify([{ types: ['key.*'], priorities: [], channels: ['ops', 'log'] }]),
  });
}

beforeAll(async () => {
  [redis, nats] = await Promise.all([startRedis({ appendOnly: true }), startNats()]);
  receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      deliveries.push({ headers: req.headers, body, signatureValid: verify(req.headers, body) });
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
  spy = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 100 });
  const sub = spy.subscribe('>');
  void (async () => {
    for await (const m of sub) {
      published.push({ subject: m.subject, data: new TextDecoder().decode(m.data), headers: m.headers ? [...m.headers.keys()].map((k) => `${k}:${m.headers!.get(k)}`).join('\n') : '' });
    }
  })();
  [a, b] = await Promise.all([start(), start()]);
});

afterAll(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await spy?.close();
  await new Promise((r) => receiver?.close(r));
  await Promise.allSettled([redis?.stop(), nats?.stop()]);
});

const create = (kw: KeywardProcess, req: Partial<CreateKeyRequest>) =>
  call(kw.admin.createKey.bind(kw.admin), CreateKeyRequest.fromPartial(req), kw.root).then((r) => {
    secrets.push(r.secret);
    return r;
  });
const validate = (kw: KeywardProcess, key: string) => call(kw.keys.validateKey.bind(kw.keys), ValidateKeyRequest.fromPartial({ key }), md);
const revoke = (kw: KeywardProcess, keyId: string, reason = 'test') => call(kw.admin.revokeKey.bind(kw.admin), { keyId, reason }, kw.root);

test('a key revoked through one sidecar is rejected by the other at once (its cache TTL is 1 h)', async () => {
  for (let i = 0; i < 10; i++) {
    const { key, secret } = await create(a, { service: 'orders' });
    expect((await validate(b, secret)).code).toBe(ValidationCode.VALIDATION_CODE_VALID); // now cached in b
    await revoke(a, key!.id);
    await eventually(async () => (await validate(b, secret)).code === ValidationCode.VALIDATION_CODE_REVOKED, 2_000, 2);
  }
});

test('updates and deletes reach the other sidecar too', async () => {
  const { key, secret } = await create(a, { service: 'orders', scopes: ['orders:read'] });
  expect((await validate(b, secret)).code).toBe(ValidationCode.VALIDATION_CODE_VALID);
  await call(a.admin.updateKey.bind(a.admin), UpdateKeyRequest.fromPartial({ keyId: key!.id, enabled: false, updateMask: ['enabled'] }), a.root);
  await eventually(async () => (await validate(b, secret)).code === ValidationCode.VALIDATION_CODE_DISABLED, 2_000, 2);
  await call(a.admin.deleteKey.bind(a.admin), { keyId: key!.id }, a.root);
  await eventually(async () => (await validate(b, secret)).code === ValidationCode.VALIDATION_CODE_NOT_FOUND, 2_000, 2);
});

test('events are on keyward.events.<service>.<type>, signed webhooks get them, and no secret is anywhere', async () => {
  const { key } = await create(b, { service: 'billing' });
  await revoke(b, key!.id, 'compromised');
  await eventually(() => published.some((p) => p.subject === 'keyward.events.billing.key.revoked'), 5_000);
  const msg = published.find((p) => p.subject === 'keyward.events.billing.key.revoked')!;
  const event = JSON.parse(msg.data);
  expect(event).toMatchObject({ type: 'key.revoked', service: 'billing', keyId: key!.id, actor: 'root', priority: 'EVENT_PRIORITY_CRITICAL' });
  expect(event.keyRevoked.reason).toBe('compromised');
  expect(msg.headers).toContain(`Nats-Msg-Id:${event.id}`);

  await eventually(() => deliveries.some((d) => d.body.includes(event.id)), 5_000);
  const delivery = deliveries.find((d) => d.body.includes(event.id))!;
  expect(delivery.signatureValid).toBe(true);
  expect(delivery.headers['keyward-event-id']).toBe(event.id);
  expect(deliveries.every((d) => d.signatureValid)).toBe(true);
  // Each event is notified by exactly one of the two sidecars.
  const ids = deliveries.flatMap((d) => String(d.headers['keyward-event-id']).split(','));
  expect(new Set(ids).size).toBe(ids.length);

  for (const s of secrets) {
    const random = s.slice(s.lastIndexOf('_') + 1);
    for (const p of published) expect(p.data + p.headers).not.toContain(random);
    for (const d of deliveries) expect(d.body).not.toContain(random);
  }
  for (const p of published.filter((x) => x.subject.startsWith('keyward.events.'))) {
    expect(p.data).not.toMatch(/"hash"/);
  }
});

test('events made while NATS is down are published after it returns: all, in order, once', async () => {
  const made: { id: string; secret: string }[] = [];
  for (let i = 0; i < 5; i++) {
    const { key, secret } = await create(a, { service: 'outage' });
    await validate(b, secret);
    made.push({ id: key!.id, secret });
  }
  await nats.kill();
  for (const m of made) await revoke(a, m.id, 'during outage'); // admin calls do not need NATS
  await nats.restart();

  for (const m of made) {
    await eventually(async () => (await validate(b, m.secret)).code === ValidationCode.VALIDATION_CODE_REVOKED, 15_000, 20);
  }
  // The stream holds each revocation once, in the order the revokes were made.
  const jsm = await jetstreamManager(spy);
  await eventually(async () => {
    const info = await jsm.streams.info('KEYWARD_EVENTS');
    const revokedIds: string[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage('KEYWARD_EVENTS', { seq });
      if (m && m.subject === 'keyward.events.outage.key.revoked') revokedIds.push(JSON.parse(new TextDecoder().decode(m.data)).keyId);
    }
    return JSON.stringify(revokedIds) === JSON.stringify(made.map((m) => m.id));
  }, 10_000, 100);
});

test('the audit trail records admin changes and revoked keys presented, isolated per service', async () => {
  const { key, secret } = await create(a, { service: 'audited' });
  await revoke(a, key!.id, 'leaked');
  for (let i = 0; i < 5; i++) await validate(b, secret); // throttled: one entry
  const list = (req: Partial<ListAuditEventsRequest>, creds = a.root) =>
    call(a.admin.listAuditEvents.bind(a.admin), ListAuditEventsRequest.fromPartial(req), creds);
  await eventually(async () => (await list({ service: 'audited', types: ['validation.revoked'] })).events.length === 1, 5_000);
  const trail = await list({ service: 'audited', keyId: key!.id });
  expect(trail.events.map((e) => e.type)).toEqual(['validation.revoked', 'key.revoked', 'key.created']);
  expect(trail.events[1]).toMatchObject({ actor: 'root', detail: expect.objectContaining({ reason: 'leaked' }) });
  expect(trail.events[0].actor).toBe(key!.id);

  const tenant = (await create(a, { service: 'keyward-admin', scopes: ['service:other:read'] })).secret;
  const denied = await list({ service: 'audited' }, bearer(tenant)).catch((e: ServiceError) => e);
  expect((denied as ServiceError).code).toBe(status.PERMISSION_DENIED);
  const own = await list({ service: 'other' }, bearer(tenant));
  expect(own.events).toEqual([]);
  for (const s of secrets) expect(JSON.stringify(trail)).not.toContain(s.slice(s.lastIndexOf('_') + 1));
});
