import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { inspect } from 'node:util';
import { MemoryDeadLetterStore } from '../../src/adapters/notify/memory-dead-letter-store';
import { WebhookChannel, type WebhookChannelOptions } from '../../src/adapters/notify/webhook-channel';
import type { Clock } from '../../src/domain/clock';
import { captureLogger, wireEvent } from '../unit/helpers/events';

/*
 * WebhookChannel against a real node:http receiver on 127.0.0.1:0. The receiver verifies every
 * request exactly as docs/NOTIFICATIONS.md tells receivers to, with nothing from keyward's code.
 */

const SECRET = 'whsec_integration_test_0123456789';

/** docs/NOTIFICATIONS.md, "Verifying a request", Node. */
function verify(secret: string, rawBody: Buffer, timestampHeader: string | undefined, signatureHeader: string | undefined, nowMs = Date.now()): boolean {
  if (!/^\d+$/.test(timestampHeader ?? '')) return false;
  if (Math.abs(Math.floor(nowMs / 1000) - Number(timestampHeader)) > 300) return false;
  const expected = Buffer.from('v1=' + createHmac('sha256', secret).update(`${timestampHeader}.`).update(rawBody).digest('hex'));
  return (signatureHeader ?? '').split(',').some((s) => {
    const got = Buffer.from(s.trim());
    return got.length === expected.length && timingSafeEqual(got, expected);
  });
}

interface Received {
  method: string;
  headers: IncomingHttpHeaders;
  body: string;
  verified: boolean;
}

/** What the receiver does with the n-th request (0-based): a status (and headers), or never answer. */
type Behaviour = (n: number) => { status: number; headers?: Record<string, string> } | 'hang';

class Receiver {
  readonly received: Received[] = [];
  private readonly server: Server;
  private readonly hung: ServerResponse[] = [];
  url = '';

  constructor(private behaviour: Behaviour = () => ({ status: 200 })) {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks);
        const h = req.headers;
        const n = this.received.length;
        this.received.push({
          method: req.method ?? '',
          headers: h,
          body: raw.toString('utf8'),
          verified: verify(SECRET, raw, h['keyward-timestamp'] as string, h['keyward-signature'] as string),
        });
        const b = this.behaviour(n);
        if (b === 'hang') {
          this.hung.push(res);
          return;
        }
        res.writeHead(b.status, b.headers).end('ok');
      });
    });
  }

  set(behaviour: Behaviour): void {
    this.behaviour = behaviour;
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/hooks/keyward`;
  }

  async stop(): Promise<void> {
    for (const r of this.hung) r.destroy();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

let receiver: Receiver;
const channels: WebhookChannel[] = [];

beforeEach(async () => {
  receiver = new Receiver();
  await receiver.start();
});

afterEach(async () => {
  await Promise.all(channels.splice(0).map((c) => c.close(100)));
  await receiver.stop();
});

/**
 * A channel with fast, deterministic retries: random() = 0.5; the injected sleep records each
 * delay and moves the channel's clock 2 s on (without waiting), so every attempt gets a new
 * timestamp that is still fresh for the receiver.
 */
function channel(over: Partial<WebhookChannelOptions> = {}) {
  const deadLetters = new MemoryDeadLetterStore();
  const log = captureLogger();
  const delays: number[] = [];
  let offset = 0;
  const clock: Clock = { now: () => Date.now() + offset };
  const ch = new WebhookChannel({
    name: 'ops-hook',
    url: receiver.url,
    secret: SECRET,
    baseDelayMs: 5,
    maxDelayMs: 1_000,
    timeoutMs: 2_000,
    deadLetters,
    logger: log.logger,
    clock,
    random: () => 0.5,
    sleep: async (ms) => {
      delays.push(ms);
      offset += 2_000;
    },
    ...over,
  });
  channels.push(ch);
  return { ch, deadLetters, delays, log };
}

describe('WebhookChannel against a real HTTP receiver', () => {
  it('retries 500, 500 then succeeds on 200: three signed attempts, each re-signed with a fresh timestamp', async () => {
    receiver.set((n) => ({ status: n < 2 ? 500 : 200 }));
    const { ch, deadLetters, delays } = channel();
    const event = wireEvent();
    await ch.send([event]);
    await ch.whenIdle();

    const got = receiver.received;
    expect(got).toHaveLength(3);
    for (const r of got) {
      expect(r.verified).toBe(true);
      expect(r.method).toBe('POST');
      expect(r.body).toBe(event.body); // exactly the event's proto JSON
      expect(r.headers['content-type']).toBe('application/json');
      expect(r.headers['user-agent']).toBe('keyward');
      expect(r.headers['keyward-event-id']).toBe(event.id);
    }
    const timestamps = got.map((r) => Number(r.headers['keyward-timestamp']));
    expect(timestamps[1]).toBeGreaterThan(timestamps[0]);
    expect(timestamps[2]).toBeGreaterThan(timestamps[1]);
    expect(new Set(got.map((r) => r.headers['keyward-signature'])).size).toBe(3);
    expect(got[2].headers['keyward-signature']).toMatch(/^v1=[0-9a-f]{64}$/);
    expect(JSON.parse(got[2].body)).toMatchObject({ id: event.id, type: 'key.revoked', priority: 'EVENT_PRIORITY_CRITICAL' });
    // full jitter with random() = 0.5: floor(0.5 * min(1000, 5 * 2^n)) for retries n = 0, 1
    expect(delays).toEqual([2, 5]);
    expect(await deadLetters.list(10)).toEqual([]);
  });

  it('does not retry a 400: one attempt, dead-lettered at once', async () => {
    receiver.set(() => ({ status: 400 }));
    const { ch, deadLetters, delays, log } = channel();
    const event = wireEvent();
    const before = Date.now();
    await ch.send([event]);
    await ch.whenIdle();

    expect(receiver.received).toHaveLength(1);
    expect(receiver.received[0].verified).toBe(true);
    expect(delays).toEqual([]);
    const [dl, ...rest] = await deadLetters.list(10);
    expect(rest).toEqual([]);
    expect(dl).toMatchObject({
      channel: 'ops-hook',
      eventIds: [event.id],
      reason: 'rejected',
      attempts: 1,
      lastError: 'HTTP 400',
      lastStatus: 400,
      body: event.body,
    });
    expect(dl.firstAttemptAt).toBeGreaterThanOrEqual(before);
    expect(dl.lastAttemptAt).toBe(dl.firstAttemptAt);
    const warning = log.lines.find((l) => l.msg === 'webhook delivery failed; recorded a dead letter');
    expect(warning).toMatchObject({ level: 40, channel: 'ops-hook', eventIds: [event.id], reason: 'rejected', lastError: 'HTTP 400' });
  });

  it('times out on a receiver that never answers, retries, then dead-letters with a timeout error', async () => {
    receiver.set(() => 'hang');
    const { ch, deadLetters, delays } = channel({ timeoutMs: 100, maxAttempts: 3 });
    const event = wireEvent();
    const started = Date.now();
    await ch.send([event]);
    expect(Date.now() - started).toBeLessThan(100); // send() does not wait for the delivery
    await ch.whenIdle();

    expect(receiver.received).toHaveLength(3);
    expect(receiver.received.every((r) => r.verified)).toBe(true);
    expect(delays).toHaveLength(2);
    const [dl] = await deadLetters.list(1);
    expect(dl).toMatchObject({ reason: 'exhausted', attempts: 3, eventIds: [event.id], body: event.body });
    expect(dl.lastError).toMatch(/timeout after 100 ms/);
    expect(dl.lastStatus).toBeUndefined();
    expect(dl.lastAttemptAt).toBeGreaterThan(dl.firstAttemptAt); // the clock moved 2 s per retry
  });

  it('waits for Retry-After on a 429 (capped), then delivers', async () => {
    receiver.set((n) => (n === 0 ? { status: 429, headers: { 'Retry-After': '3' } } : n === 1 ? { status: 429, headers: { 'Retry-After': '120' } } : { status: 204 }));
    const { ch, deadLetters, delays } = channel({ maxRetryAfterMs: 30_000 });
    await ch.send([wireEvent()]);
    await ch.whenIdle();
    expect(receiver.received).toHaveLength(3);
    expect(delays).toEqual([3_000, 30_000]); // the receiver's wish, then the cap
    expect(await deadLetters.list(10)).toEqual([]);
  });

  it('waits between attempts with its own timer when no sleep is injected', async () => {
    receiver.set((n) => ({ status: n === 0 ? 503 : 200 }));
    const { ch, deadLetters } = channel({ sleep: undefined, random: () => 0.99, baseDelayMs: 40 });
    const started = Date.now();
    await ch.send([wireEvent()]);
    await ch.whenIdle();
    expect(receiver.received).toHaveLength(2);
    expect(Date.now() - started).toBeGreaterThanOrEqual(35); // floor(0.99 * 40) ms, give or take a timer tick
    expect(await deadLetters.list(1)).toEqual([]);
  });

  it('posts a batch as {"events":[...]} with the ids comma-separated, signed over the raw body', async () => {
    const { ch } = channel();
    const events = [
      wireEvent({ payload: { type: 'ratelimit.exceeded', limitName: 'per_second', limit: 10, deniedCount: 5 } }),
      wireEvent({ payload: { type: 'ratelimit.exceeded', limitName: 'per_minute', limit: 100, deniedCount: 7 } }),
      wireEvent({ payload: { type: 'policy.violation', rule: 'network', reason: 'ip_not_allowed' } }),
    ];
    await ch.send(events);
    await ch.whenIdle();

    expect(receiver.received).toHaveLength(1);
    const r = receiver.received[0];
    expect(r.verified).toBe(true);
    expect(r.body).toBe(`{"events":[${events.map((e) => e.body).join(',')}]}`);
    expect(JSON.parse(r.body)).toEqual({ events: events.map((e) => JSON.parse(e.body)) });
    expect(r.headers['keyward-event-id']).toBe(events.map((e) => e.id).join(','));
  });

  it('a receiver with another secret, or a stale timestamp, rejects the request', async () => {
    const { ch } = channel({ secret: 'some-other-secret-0123456789' });
    await ch.send([wireEvent()]);
    await ch.whenIdle();
    expect(receiver.received[0].verified).toBe(false);

    const r = receiver.received[0];
    const stale = (Date.now() - 301_000) / 1000;
    expect(verify(SECRET, Buffer.from(r.body), String(Math.floor(stale)), r.headers['keyward-signature'] as string)).toBe(false);
  });

  it('retries a refused connection and dead-letters it as a network error', async () => {
    const url = receiver.url;
    await receiver.stop();
    receiver = new Receiver();
    await receiver.start(); // for afterEach; the channel points at the stopped port
    const { ch, deadLetters } = channel({ url, maxAttempts: 2 });
    await ch.send([wireEvent()]);
    await ch.whenIdle();
    const [dl] = await deadLetters.list(1);
    expect(dl).toMatchObject({ reason: 'exhausted', attempts: 2 });
    expect(dl.lastError).toMatch(/^network error: .*ECONNREFUSED/);
  });

  it('does not follow redirects: a 302 is final', async () => {
    receiver.set(() => ({ status: 302, headers: { Location: 'http://example.com/' } }));
    const { ch, deadLetters } = channel();
    await ch.send([wireEvent()]);
    await ch.whenIdle();
    expect(receiver.received).toHaveLength(1);
    const [dl] = await deadLetters.list(1);
    expect(dl).toMatchObject({ reason: 'rejected', lastStatus: 302 });
  });

  it('close() waits for a delivery in flight, and cuts a hung one short into a closed dead letter', async () => {
    receiver.set((n) => (n === 0 ? { status: 200 } : 'hang'));
    const { ch, deadLetters } = channel({ timeoutMs: 10_000 });
    await ch.send([wireEvent()]);
    await ch.whenIdle();
    const hung = wireEvent();
    await ch.send([hung]);
    await new Promise((r) => setTimeout(r, 50)); // the request is at the receiver
    const started = Date.now();
    await ch.close(200);
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(ch.pending).toBe(0);
    const [dl] = await deadLetters.list(10);
    expect(dl).toMatchObject({ reason: 'closed', eventIds: [hung.id], attempts: 1, lastError: 'channel closed' });
  });

  it('never logs the secret, the URL or a body', async () => {
    receiver.set((n) => ({ status: n === 0 ? 503 : 400 }));
    const { ch, log } = channel();
    const event = wireEvent();
    await ch.send([event]);
    await ch.whenIdle();
    const text = log.text();
    expect(text).toContain('ops-hook');
    expect(text).not.toContain(SECRET);
    expect(text).not.toContain('/hooks/keyward');
    expect(text).not.toContain('keyRevoked');
    expect(inspect(ch, { depth: 6 })).not.toContain(SECRET);
  });
});
