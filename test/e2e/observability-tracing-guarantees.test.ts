import { execFile } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Metadata } from '@grpc/grpc-js';
import { generateKey } from '../../src/domain/key-format';
import { CreateKeyRequest } from '../../src/gen/keyward/v1/key_admin_service.pb';
import { ValidateKeyRequest, ValidationCode, type ValidateKeyStreamResponse } from '../../src/gen/keyward/v1/key_service.pb';
import { healthStatus } from '../support/health';
import { call, ROOT, startKeyward, type KeywardProcess } from '../support/keyward-process';
import { SpanKind, startOtlpReceiver, type OtlpReceiver, type ReceivedSpan } from '../support/otlp-receiver';

/*
 * What docs/OBSERVABILITY.md promises about traces beyond their content: the spans still buffered
 * are exported on SIGTERM, within a 2 s bound when the collector does not answer; health checks
 * and server reflection make no span; a ValidateKeyStream call is one SERVER span over the whole
 * stream. The built `keyward serve` (in-memory store) exports to a real OTLP/HTTP receiver.
 */

const run = promisify(execFile);
const BUF = join(ROOT, 'node_modules/.bin/buf');
const STREAM = 'keyward.v1.KeyService/ValidateKeyStream';

let receiver: OtlpReceiver;
const started: KeywardProcess[] = [];

beforeAll(async () => {
  receiver = await startOtlpReceiver();
});

afterAll(async () => {
  await Promise.allSettled(started.map((p) => p.stop()));
  await receiver?.close();
});

async function keyward(service: string, env: Record<string, string> = {}): Promise<KeywardProcess> {
  const p = await startKeyward({
    OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
    OTEL_SERVICE_NAME: service,
    OTEL_BSP_SCHEDULE_DELAY: '100',
    OTEL_TRACES_SAMPLER: 'always_on',
    ...env,
  });
  started.push(p);
  return p;
}

const of = (service: string) => receiver.spans.filter((s) => s.service === service);
const validate = (p: KeywardProcess, key: string, md = new Metadata()) =>
  call(p.keys.validateKey.bind(p.keys), ValidateKeyRequest.fromPartial({ key }), md);

describe('untraced calls', () => {
  it('health checks (both listeners) and server reflection make no span', async () => {
    const kw = await keyward('keyward-untraced');
    expect(await healthStatus(kw.healthAddr)).toBe('SERVING');
    expect(await healthStatus(kw.grpcAddr)).toBe('SERVING');
    const listed = await run(BUF, ['curl', '--protocol', 'grpc', '--http2-prior-knowledge', '--list-services', `http://${kw.grpcAddr}`]);
    expect(listed.stdout).toContain('keyward.v1.KeyService');
    // a traced call after them, in a trace of its own: once it is in, and a batch period more, theirs would be too
    const md = new Metadata();
    md.set('traceparent', '00-7e57ed0000000000000000000000c0de-00f067aa0ba902b7-01');
    await validate(kw, 'garbage', md);
    await receiver.waitFor((spans) => spans.some((s) => s.traceId === '7e57ed0000000000000000000000c0de'));
    await new Promise((r) => setTimeout(r, 500));
    const spans = of('keyward-untraced');
    expect(spans.filter((s) => s.kind === SpanKind.SERVER).map((s) => s.name)).toEqual(['keyward.v1.KeyService/ValidateKey']);
    expect(spans.filter((s) => /grpc\.(health|reflection)/.test(s.name) || /grpc\.(health|reflection)/.test(String(s.attributes['rpc.service'])))).toEqual([]);
  });
});

describe('ValidateKeyStream', () => {
  let kw: KeywardProcess;
  let secret: string;
  const server = (): ReceivedSpan[] => of('keyward-stream').filter((s) => s.name === STREAM);

  beforeAll(async () => {
    kw = await keyward('keyward-stream');
    ({ secret } = await call(kw.admin.createKey.bind(kw.admin), CreateKeyRequest.fromPartial({ service: 'orders', scopes: ['orders:read'] }), kw.root));
  });

  it('is one SERVER span from the stream\'s start to its end, with the validations made on it below it', async () => {
    const stream = kw.keys.validateKeyStream(new Metadata());
    const answers: ValidateKeyStreamResponse[] = [];
    let answered: (() => void) | undefined;
    stream.on('data', (r: ValidateKeyStreamResponse) => {
      answers.push(r);
      answered?.();
    });
    const ended = new Promise<void>((resolve, reject) => {
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const ask = (id: number, key: string) =>
      new Promise<void>((resolve) => {
        answered = resolve;
        stream.write({ id, request: ValidateKeyRequest.fromPartial({ key }) });
      });
    const opened = performance.now();
    await ask(1, secret);
    await new Promise((r) => setTimeout(r, 400)); // the stream stays open, idle
    await ask(2, generateKey('sk_test')); // well-formed, unknown: a cache miss, a span of its own
    stream.end();
    await ended;
    const lasted = performance.now() - opened;
    expect(answers.map((a) => a.response?.code)).toEqual([ValidationCode.VALIDATION_CODE_VALID, ValidationCode.VALIDATION_CODE_NOT_FOUND]);

    await receiver.waitFor(() => server().length === 1);
    const span = server()[0];
    expect(span.kind).toBe(SpanKind.SERVER);
    expect(span.attributes).toMatchObject({ 'rpc.system': 'grpc', 'rpc.service': 'keyward.v1.KeyService', 'rpc.method': 'ValidateKeyStream', 'rpc.grpc.status_code': 0 });
    // it spans the idle gap between the two requests, and no more than the client saw
    expect(span.endMs - span.startMs).toBeGreaterThanOrEqual(390);
    expect(span.endMs - span.startMs).toBeLessThanOrEqual(lasted + 5);
    await receiver.waitFor((spans) => spans.some((s) => s.parentSpanId === span.spanId));
    const lookup = of('keyward-stream').find((s) => s.parentSpanId === span.spanId && s.name === 'keyward.cache.lookup');
    expect(lookup).toBeDefined();
    expect(lookup!.traceId).toBe(span.traceId);
  });

  it('a stream the client cancels still ends its span (and so is exported)', async () => {
    const before = server().length;
    const stream = kw.keys.validateKeyStream(new Metadata());
    stream.on('error', () => undefined); // the cancellation itself
    await new Promise<void>((resolve) => {
      stream.once('data', () => resolve());
      stream.write({ id: 1, request: ValidateKeyRequest.fromPartial({ key: secret }) });
    });
    stream.cancel();
    await receiver.waitFor(() => server().length === before + 1);
    // grpc-js hands the handler a half-close before the cancellation, so the status recorded is OK (0), not CANCELLED
    expect(server().at(-1)!.attributes['rpc.method']).toBe('ValidateKeyStream');
  });
});

describe('SIGTERM', () => {
  it('exports the spans of the calls made just before it, before the process exits', async () => {
    // no batch goes on its own for a minute: only the shutdown can send these
    const kw = await keyward('keyward-sigterm', { OTEL_BSP_SCHEDULE_DELAY: '60000' });
    for (let i = 0; i < 5; i++) expect((await validate(kw, 'garbage')).code).toBe(ValidationCode.VALIDATION_CODE_MALFORMED);
    await new Promise((r) => setTimeout(r, 300));
    expect(of('keyward-sigterm')).toEqual([]);
    expect(await kw.stop('SIGTERM')).toBe(0);
    // the receiver stores a request before answering it, and keyward exits only after the answer
    expect(of('keyward-sigterm').filter((s) => s.name === 'keyward.v1.KeyService/ValidateKey')).toHaveLength(5);
  });

  it('a collector that never answers keeps keyward at most about 2 s after it', async () => {
    const held: ServerResponse[] = [];
    const stuck: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
      req.resume();
      held.push(res);
    });
    await new Promise<void>((resolve) => stuck.listen(0, '127.0.0.1', resolve));
    try {
      const kw = await keyward('keyward-stuck', {
        OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${(stuck.address() as AddressInfo).port}`,
        OTEL_BSP_SCHEDULE_DELAY: '60000',
      });
      await validate(kw, 'garbage');
      const signalled = performance.now();
      expect(await kw.stop('SIGTERM')).toBe(0);
      const took = performance.now() - signalled;
      expect(held.length).toBeGreaterThan(0); // the export was sent and left hanging
      expect(took).toBeGreaterThanOrEqual(1_900); // it did wait for the export ...
      expect(took).toBeLessThan(6_000); // ... up to the 2 s bound, not the 30 s export timeout
    } finally {
      for (const res of held) res.destroy();
      stuck.closeAllConnections();
      await new Promise<void>((resolve) => stuck.close(() => resolve()));
    }
  }, 45_000);
});
