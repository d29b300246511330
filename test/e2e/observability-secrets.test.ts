import { Metadata, type ServiceError } from '@grpc/grpc-js';
import { connect } from '@nats-io/transport-node';
import { parseKey } from '../../src/domain/key-format';
import { CreateKeyRequest, GetKeyRequest, ListKeysRequest, RevokeKeyRequest } from '../../src/gen/keyward/v1/key_admin_service.pb';
import { ValidateKeyRequest, ValidationCode } from '../../src/gen/keyward/v1/key_service.pb';
import { eventually } from '../support/health';
import { ADMIN_TOKEN, bearer, call, startKeyward, type KeywardProcess } from '../support/keyward-process';
import { startNats, type NatsServerHandle } from '../support/nats-server';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver';
import { scrape } from '../support/prometheus-text';
import { startRedis, type RedisServerHandle } from '../support/redis-server';

type NatsConnection = Awaited<ReturnType<typeof connect>>;

/*
 * No secret anywhere: with tracing on (every span exported to a real OTLP receiver) and debug logs,
 * two sidecars on Redis and NATS go through creating, validating (valid, malformed, unknown, wrong
 * service, revoked), revoking, and admin calls with bad credentials, including secrets pushed into
 * request fields that are echoed in errors. Then every log line (stdout and stderr), every span
 * (raw protobuf bytes and decoded attributes, events, status), every NATS message (payload and
 * headers, seen by a plain subscriber on `>`) and the /metrics text are searched for each secret:
 * the whole keys, their random parts, the admin key and the bootstrap admin token.
 */

let receiver: OtlpReceiver;
let redis: RedisServerHandle;
let nats: NatsServerHandle;
let spy: NatsConnection;
const messages: string[] = [];
let a: KeywardProcess;
let b: KeywardProcess;

const env = (name: string) => ({
  OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
  OTEL_SERVICE_NAME: name,
  OTEL_BSP_SCHEDULE_DELAY: '100',
  KEYWARD_LOG_LEVEL: 'debug',
  KEYWARD_REDIS_URL: redis.url,
  KEYWARD_NATS_URL: nats.url,
  KEYWARD_NOTIFICATION_ROUTES: JSON.stringify([{ types: ['*'], priorities: [], channels: ['log'] }]),
});

beforeAll(async () => {
  receiver = await startOtlpReceiver();
  [redis, nats] = await Promise.all([startRedis(), startNats()]);
  spy = await connect({ servers: nats.url });
  const sub = spy.subscribe('>');
  void (async () => {
    for await (const m of sub) {
      const headers = m.headers ? [...m.headers.keys()].map((k) => `${k}: ${m.headers!.get(k)}`).join('\n') : '';
      messages.push(`${m.subject}\n${headers}\n${new TextDecoder().decode(m.data)}`);
    }
  })();
  [a, b] = await Promise.all([startKeyward(env('keyward-a')), startKeyward(env('keyward-b'))]);
}, 60_000);

afterAll(async () => {
  await Promise.allSettled([a?.stop(), b?.stop()]);
  await spy?.close();
  await Promise.allSettled([redis?.stop(), nats?.stop(), receiver?.close()]);
});

const secrets = new Set<string>([ADMIN_TOKEN]);
/** Remembers a key's secret, and the parts of it that are just as secret. */
function remember(secret: string): string {
  const parsed = parseKey(secret)!;
  secrets.add(secret);
  secrets.add(parsed.random); // the 33 random characters
  secrets.add(parsed.random.slice(4) + parsed.checksum); // everything past the display hint
  return secret;
}

async function create(p: KeywardProcess, req: Partial<CreateKeyRequest>, md = p.root): Promise<{ id: string; secret: string }> {
  const res = await call(p.admin.createKey.bind(p.admin), CreateKeyRequest.fromPartial(req), md);
  return { id: res.key!.id, secret: remember(res.secret) };
}

const validate = (p: KeywardProcess, req: Partial<ValidateKeyRequest>) =>
  call(p.keys.validateKey.bind(p.keys), ValidateKeyRequest.fromPartial(req), new Metadata()).catch((e: ServiceError) => e);

describe('no secret anywhere', () => {
  it('goes through the key life cycle with tracing and debug logs on', async () => {
    const live = await create(a, { service: 'orders', name: 'live', prefix: 'sk_live', scopes: ['orders:*'] });
    const test = await create(b, { service: 'orders', name: 'test', prefix: 'sk_test' });
    const admin = await create(a, { service: 'keyward-admin', name: 'ops', scopes: ['admin'] });
    const billing = await create(b, { service: 'billing', name: 'other' }, bearer(admin.secret)); // an admin key at work

    // valid, on both sidecars (one of them from its cache, the other from Redis)
    expect((await validate(a, { key: live.secret, service: 'orders', requiredScopes: ['orders:read'] })) as { code: number }).toMatchObject({
      code: ValidationCode.VALIDATION_CODE_VALID,
    });
    expect(await validate(b, { key: live.secret })).toMatchObject({ code: ValidationCode.VALIDATION_CODE_VALID });
    // invalid: malformed (a key with a typo), of another service, scope denied, unknown
    const typo = live.secret.slice(0, -1) + (live.secret.endsWith('a') ? 'b' : 'a');
    secrets.add(typo);
    expect(await validate(a, { key: typo })).toMatchObject({ code: ValidationCode.VALIDATION_CODE_MALFORMED });
    expect(await validate(b, { key: billing.secret, service: 'orders' })).toMatchObject({ code: ValidationCode.VALIDATION_CODE_NOT_FOUND });
    expect(await validate(a, { key: test.secret, requiredScopes: ['orders:write'] })).toMatchObject({
      code: ValidationCode.VALIDATION_CODE_INSUFFICIENT_SCOPE,
    });
    // secrets where a field is expected: errors quote bad fields, spans record error messages
    await validate(a, { key: test.secret, clientIp: test.secret });
    await validate(b, { key: test.secret, service: `${test.secret}!` });
    await validate(a, { key: test.secret, requiredScopes: [live.secret] });

    // revoke, then validate the revoked key on the other sidecar (told through NATS)
    await call(a.admin.revokeKey.bind(a.admin), RevokeKeyRequest.fromPartial({ keyId: test.id, reason: 'leaked' }), a.root);
    await eventually(async () => ((await validate(b, { key: test.secret })) as { code: number }).code === ValidationCode.VALIDATION_CODE_REVOKED);

    // admin calls with bad credentials: a wrong token, the token with a typo, a non-admin key,
    // a revoked key, a key in another metadata form
    const badTokens = [`${ADMIN_TOKEN}x`, `x${ADMIN_TOKEN.slice(1)}`, 'wrong-token-0123456789abcdefghijklmnopqrstuv'];
    for (const t of badTokens) secrets.add(t);
    for (const md of [...badTokens.map(bearer), bearer(live.secret), bearer(test.secret), bearer(typo)]) {
      const err = await call(a.admin.getKey.bind(a.admin), GetKeyRequest.fromPartial({ keyId: live.id }), md).catch((e: ServiceError) => e);
      expect((err as ServiceError).code).toBe(16); // UNAUTHENTICATED
    }
    const raw = new Metadata();
    raw.set('authorization', live.secret); // no "Bearer"
    await call(b.admin.listKeys.bind(b.admin), ListKeysRequest.fromPartial({ service: 'orders' }), raw).catch(() => undefined);
    // revoking the admin key withdraws it
    await call(a.admin.revokeKey.bind(a.admin), RevokeKeyRequest.fromPartial({ keyId: admin.id }), a.root);
    await eventually(async () =>
      call(b.admin.getKey.bind(b.admin), GetKeyRequest.fromPartial({ keyId: live.id }), bearer(admin.secret)).then(
        () => false,
        (e: ServiceError) => e.code === 16,
      ),
    );
  });

  it('finds none in the log lines, spans, NATS messages and metrics', async () => {
    // let the batches go out: spans (100 ms batches), events, notifications
    await receiver.waitFor((spans) => spans.some((s) => s.service === 'keyward-b' && s.name.startsWith('process ')));
    await new Promise((r) => setTimeout(r, 1_000));
    const metricsText = JSON.stringify(await Promise.all([scrape(a.metricsAddr!), scrape(b.metricsAddr!)]));
    await Promise.all([a.stop(), b.stop()]); // flushes the last spans and log lines

    const logs = [...a.logs, ...b.logs].map((l) => JSON.stringify(l));
    const stderr = [...a.stderr, ...b.stderr];
    const spanText = JSON.stringify(receiver.spans);
    const spanBytes = receiver.bodies.map((body) => body.toString('latin1'));
    expect(logs.length).toBeGreaterThan(10);
    expect(receiver.spans.length).toBeGreaterThan(20);
    expect(messages.length).toBeGreaterThan(3);

    const places: [string, string[]][] = [
      ['log line', logs],
      ['stderr', stderr],
      ['span', [spanText]],
      ['OTLP request body', spanBytes],
      ['NATS message', messages],
      ['metrics', [metricsText]],
    ];
    const found: string[] = [];
    for (const secret of secrets) {
      for (const [where, texts] of places) {
        const hit = texts.find((t) => t.includes(secret));
        if (hit) found.push(`${where} holds ${secret.slice(0, 12)}…: ${hit.slice(0, 300)}`);
      }
    }
    expect(found).toEqual([]);
  });

  it('still says what happened: hints, ids and trace ids are there', () => {
    const logs = [...a.logs, ...b.logs];
    // the revocation's notification, logged inside the consume span, links to the trace
    const eventLine = logs.find((l) => l.msg === 'keyward event' && (l.event as { type?: string } | undefined)?.type === 'key.revoked');
    expect(eventLine).toBeDefined();
    expect(eventLine!.trace_id).toMatch(/^[0-9a-f]{32}$/);
    expect(receiver.spans.some((s) => s.traceId === eventLine!.trace_id && s.attributes['rpc.method'] === 'RevokeKey')).toBe(true);
    // spans carry key ids, never more
    expect(receiver.spans.some((s) => typeof s.attributes['keyward.key.id'] === 'string')).toBe(true);
  });
});
