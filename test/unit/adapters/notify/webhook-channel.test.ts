import type { DeadLetter, DeadLetterStore } from '../../../../src/adapters/notify/dead-letter-store';
import { MemoryDeadLetterStore } from '../../../../src/adapters/notify/memory-dead-letter-store';
import { composeBody, WebhookChannel, type WebhookChannelOptions } from '../../../../src/adapters/notify/webhook-channel';
import { verifyWebhookSignature } from '../../../../src/adapters/notify/webhook-signature';
import { ManualClock } from '../../../../src/domain/clock';
import { StoreUnavailableError } from '../../../../src/domain/errors';
import { captureLogger, wireEvent } from '../../helpers/events';

const SECRET = 'unit-test-secret-0123456789';

interface Call {
  url: string;
  init: RequestInit;
}

/** A fetch whose n-th call answers `reply(n)`: a status, a Response, or a thrown error. */
function fakeFetch(reply: (n: number, call: Call) => number | Response | Error | Promise<Response>) {
  const calls: Call[] = [];
  const fn = (async (url: string, init: RequestInit) => {
    const call = { url, init };
    calls.push(call);
    const r = await reply(calls.length - 1, call);
    if (r instanceof Error) throw r;
    return typeof r === 'number' ? new Response(r === 204 ? null : 'x', { status: r }) : r;
  }) as unknown as typeof fetch;
  return { fn, calls };
}

function make(reply: Parameters<typeof fakeFetch>[0], over: Partial<WebhookChannelOptions> = {}) {
  const f = fakeFetch(reply);
  const deadLetters = new MemoryDeadLetterStore();
  const log = captureLogger();
  const clock = new ManualClock(1_700_000_000_000);
  const delays: number[] = [];
  const ch = new WebhookChannel({
    name: 'hook',
    url: 'https://hooks.example.com/T0/B0/token',
    secret: SECRET,
    deadLetters,
    logger: log.logger,
    clock,
    random: () => 1 - Number.EPSILON,
    sleep: async (ms) => {
      delays.push(ms);
      clock.advance(ms);
    },
    fetch: f.fn,
    ...over,
  });
  return { ch, calls: f.calls, deadLetters, log, clock, delays };
}

/** A request that never gets an answer; rejects when aborted, as fetch does. */
const hang = (_n: number, call: Call) =>
  new Promise<Response>((_resolve, reject) => call.init.signal!.addEventListener('abort', () => reject(new Error('aborted'))));

const header = (c: Call, name: string) => (c.init.headers as Record<string, string>)[name];

describe('WebhookChannel (fake fetch)', () => {
  it('signs v1=HMAC(secret, "<timestamp>.<body>") with the clock in unix seconds', async () => {
    const { ch, calls } = make(() => 200);
    const e = wireEvent();
    await ch.send([e]);
    await ch.whenIdle();
    const c = calls[0];
    expect(c.url).toBe('https://hooks.example.com/T0/B0/token');
    expect(c.init.method).toBe('POST');
    expect(c.init.redirect).toBe('manual');
    expect(c.init.body).toBe(e.body);
    expect(header(c, 'Keyward-Timestamp')).toBe('1700000000');
    expect(header(c, 'Keyward-Event-Id')).toBe(e.id);
    expect(header(c, 'Content-Type')).toBe('application/json');
    expect(header(c, 'User-Agent')).toBe('keyward');
    expect(
      verifyWebhookSignature({
        secret: SECRET,
        body: e.body,
        timestamp: header(c, 'Keyward-Timestamp'),
        signature: header(c, 'Keyward-Signature'),
        now: 1_700_000_000_000,
      }),
    ).toBe(true);
  });

  it('backs off with full jitter: uniform in [0, min(maxDelay, base * 2^n)]', async () => {
    const rolls = [0, 0.5, 0.25, 0.999, 0.5, 0.1];
    let i = 0;
    const { ch, delays, deadLetters } = make(() => 500, {
      maxAttempts: 7,
      baseDelayMs: 100,
      maxDelayMs: 1_000,
      random: () => rolls[i++],
    });
    await ch.send([wireEvent()]);
    await ch.whenIdle();
    // ceilings 100, 200, 400, 800, 1000 (capped), 1000
    expect(delays).toEqual([0, 100, 100, 799, 500, 100]);
    const [dl] = await deadLetters.list(1);
    expect(dl).toMatchObject({ reason: 'exhausted', attempts: 7, lastError: 'HTTP 500', lastStatus: 500 });
  });

  it.each([408, 425, 429, 500, 502, 503, 504])('retries %i', async (status) => {
    const { ch, calls, deadLetters } = make((n) => (n === 0 ? status : 200));
    await ch.send([wireEvent()]);
    await ch.whenIdle();
    expect(calls).toHaveLength(2);
    expect(deadLetters.size).toBe(0);
  });

  it.each([400, 401, 403, 404, 409, 410, 413, 422, 301, 307])('does not retry %i', async (status) => {
    const { ch, calls, deadLetters } = make(() => status);
    await ch.send([wireEvent()]);
    await ch.whenIdle();
    expect(calls).toHaveLength(1);
    const [dl] = await deadLetters.list(1);
    expect(dl).toMatchObject({ reason: 'rejected', attempts: 1, lastStatus: status });
    expect(dl.lastError.startsWith(`HTTP ${status}`)).toBe(true);
  });

  it('re-signs every attempt with a fresh timestamp', async () => {
    const { ch, calls } = make((n) => (n < 2 ? 503 : 200), { baseDelayMs: 4_000, maxDelayMs: 60_000 });
    await ch.send([wireEvent()]);
    await ch.whenIdle();
    const ts = calls.map((c) => Number(header(c, 'Keyward-Timestamp')));
    expect(ts[1]).toBeGreaterThan(ts[0]);
    expect(ts[2]).toBeGreaterThan(ts[1]);
    expect(new Set(calls.map((c) => header(c, 'Keyward-Signature'))).size).toBe(3);
  });

  it('honours Retry-After as seconds or an HTTP date on 429 and 503, capped; ignores garbage', async () => {
    const clockStart = 1_700_000_000_000;
    const replies = [
      new Response('', { status: 429, headers: { 'Retry-After': '7' } }),
      new Response('', { status: 503, headers: { 'Retry-After': new Date(clockStart + 7_000 + 12_000).toUTCString() } }),
      new Response('', { status: 429, headers: { 'Retry-After': '999999' } }),
      new Response('', { status: 429, headers: { 'Retry-After': 'soon' } }),
      new Response('', { status: 500, headers: { 'Retry-After': '9' } }), // only 429 and 503 carry it
      new Response('', { status: 200 }),
    ];
    const { ch, delays } = make((n) => replies[n], { maxAttempts: 6, baseDelayMs: 10, maxDelayMs: 1_000, maxRetryAfterMs: 30_000, random: () => 0.5 });
    await ch.send([wireEvent()]);
    await ch.whenIdle();
    expect(delays).toEqual([7_000, 12_000, 30_000, 40, 80]);
  });

  it('reports network errors by their cause, and timeouts by the configured timeout', async () => {
    const refused = Object.assign(new TypeError('fetch failed'), {
      cause: Object.assign(new Error('connect ECONNREFUSED 10.0.0.1:443'), { code: 'ECONNREFUSED' }),
    });
    const { ch, deadLetters } = make(() => refused, { maxAttempts: 2 });
    await ch.send([wireEvent()]);
    await ch.whenIdle();
    expect((await deadLetters.list(1))[0].lastError).toBe('network error: connect ECONNREFUSED 10.0.0.1:443');

    const slow = make(hang, { maxAttempts: 2, timeoutMs: 20 });
    await slow.ch.send([wireEvent()]);
    await slow.ch.whenIdle();
    expect((await slow.deadLetters.list(1))[0]).toMatchObject({ reason: 'exhausted', attempts: 2, lastError: 'timeout after 20 ms' });
  });

  it('send() resolves before the delivery; deliveries run at most `concurrency` at a time', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let inFlight = 0;
    let peak = 0;
    const { ch, calls } = make(
      async () => {
        inFlight++;
        peak = Math.max(peak, inFlight);
        await gate;
        inFlight--;
        return new Response(null, { status: 204 });
      },
      { concurrency: 3 },
    );
    for (let i = 0; i < 10; i++) await ch.send([wireEvent()]);
    expect(ch.pending).toBe(10);
    await new Promise((r) => setImmediate(r));
    expect(calls).toHaveLength(3);
    release();
    await ch.whenIdle();
    expect(calls).toHaveLength(10);
    expect(peak).toBe(3);
    expect(ch.pending).toBe(0);
  });

  it('dead-letters as queue_full beyond maxPending, without any attempt', async () => {
    const { ch, calls, deadLetters, log } = make(hang, { maxPending: 2, concurrency: 1, closeTimeoutMs: 0 });
    const events = [wireEvent(), wireEvent(), wireEvent()];
    for (const e of events) await ch.send([e]);
    const [dl] = await deadLetters.list(10);
    expect(dl).toMatchObject({ reason: 'queue_full', attempts: 0, eventIds: [events[2].id], body: events[2].body });
    expect(dl.lastError).toMatch(/^queue_full/);
    expect(dl.firstAttemptAt).toBe(1_700_000_000_000);
    expect(calls).toHaveLength(1);
    expect(log.lines.some((l) => l.msg === 'webhook delivery failed; recorded a dead letter' && l.reason === 'queue_full')).toBe(true);
    await ch.close(0);
  });

  it('rejects send() when the queue is full and the dead letter cannot be recorded either', async () => {
    const broken: DeadLetterStore = {
      append: async () => {
        throw new StoreUnavailableError('redis down');
      },
      list: async () => [],
    };
    const { ch, log } = make(hang, { maxPending: 1, deadLetters: broken });
    await ch.send([wireEvent()]);
    await expect(ch.send([wireEvent()])).rejects.toBeInstanceOf(StoreUnavailableError);
    expect(log.lines.some((l) => l.level === 50 && l.msg === 'webhook delivery failed and its dead letter could not be recorded')).toBe(true);
    await ch.close(0);
  });

  it('logs an error when a background delivery fails and the dead-letter store is down', async () => {
    const broken: DeadLetterStore = {
      append: async () => {
        throw new StoreUnavailableError('redis down');
      },
      list: async () => [],
    };
    const { ch, log } = make(() => 400, { deadLetters: broken });
    await ch.send([wireEvent()]);
    await ch.whenIdle();
    const line = log.lines.find((l) => l.level === 50);
    expect(line).toMatchObject({ channel: 'hook', reason: 'rejected', lastError: 'HTTP 400' });
  });

  it('close() cuts a retry wait short; later sends become closed dead letters', async () => {
    const { ch, calls, deadLetters } = make(() => 503, {
      sleep: (_ms, signal) => new Promise((_r, reject) => signal.addEventListener('abort', () => reject(new Error('aborted')))),
    });
    const first = wireEvent();
    await ch.send([first]);
    await new Promise((r) => setImmediate(r));
    await ch.close(10);
    expect(calls).toHaveLength(1);
    const late = wireEvent();
    await ch.send([late]);
    const records: DeadLetter[] = await deadLetters.list(10);
    expect(records.map((r) => [r.eventIds[0], r.reason, r.attempts, r.lastError])).toEqual([
      [late.id, 'closed', 0, 'channel closed'],
      [first.id, 'closed', 1, 'channel closed (last error: HTTP 503)'],
    ]);
  });

  it('close() with nothing pending resolves at once and is idempotent', async () => {
    const { ch } = make(() => 200);
    await Promise.all([ch.close(), ch.close()]);
  });

  it('sends nothing for an empty list', async () => {
    const { ch, calls } = make(() => 200);
    await ch.send([]);
    await ch.whenIdle();
    expect(calls).toHaveLength(0);
  });

  it('refuses bad options, naming the channel but never the secret or URL', () => {
    const base = { name: 'hook', url: 'https://h.example/x', secret: SECRET, deadLetters: new MemoryDeadLetterStore(), logger: captureLogger().logger };
    expect(() => new WebhookChannel({ ...base, url: 'ftp://h.example/x' })).toThrow('webhook hook: url must be an http or https URL');
    expect(() => new WebhookChannel({ ...base, url: 'not a url' })).toThrow('webhook hook: url must be an http or https URL');
    expect(() => new WebhookChannel({ ...base, url: 'https://u:pw@h.example/x' })).toThrow(/must not contain user:password@/);
    expect(() => new WebhookChannel({ ...base, secret: '' })).toThrow('webhook hook: secret must not be empty');
    expect(() => new WebhookChannel({ ...base, maxAttempts: 0 })).toThrow(/maxAttempts must be a positive integer/);
    expect(() => new WebhookChannel({ ...base, timeoutMs: 1.5 })).toThrow(/timeoutMs must be a positive integer/);
    expect(() => new WebhookChannel({ ...base, baseDelayMs: -1 })).toThrow(/baseDelayMs must be 0 or more/);
  });
});

describe('composeBody', () => {
  it('is the event body for one event, and {"events":[...]} around the bodies for several', () => {
    const a = wireEvent();
    const b = wireEvent();
    expect(composeBody([a])).toBe(a.body);
    expect(composeBody([a, b])).toBe(`{"events":[${a.body},${b.body}]}`);
    expect(JSON.parse(composeBody([a, b]))).toEqual({ events: [JSON.parse(a.body), JSON.parse(b.body)] });
  });
});
