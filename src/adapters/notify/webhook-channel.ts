import { createSecretKey, type KeyObject } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { systemClock, type Clock } from '../../domain/clock';
import type { Logger } from '../../logger';
import type { WireEvent } from '../../ports/event-transport';
import type { NotificationChannel } from '../../ports/notification-channel';
import type { DeadLetter, DeadLetterReason, DeadLetterStore } from './dead-letter-store';
import { signWebhook, WEBHOOK_HEADERS } from './webhook-signature';

export interface WebhookChannelOptions {
  /** The configured name; the only way logs and dead letters refer to the endpoint. */
  name: string;
  /** `http(s)://…` without `user:password@`. Never logged: a webhook URL often is a credential. */
  url: string;
  /** HMAC-SHA256 key of `Keyward-Signature` (see webhook-signature.ts). Never logged. */
  secret: string;
  /** Per attempt, from sending the request to reading the response. Default 5000. */
  timeoutMs?: number;
  /** Attempts per delivery, the first included. Default 6. */
  maxAttempts?: number;
  /** Backoff before retry n (0-based) is uniform in [0, min(maxDelayMs, baseDelayMs * 2^n)]. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Cap on a receiver's `Retry-After` (429, 503). Default `maxDelayMs`. */
  maxRetryAfterMs?: number;
  /** Deliveries queued or in flight at most; beyond it a delivery is dead-lettered (`queue_full`). Default 1000. */
  maxPending?: number;
  /** Deliveries in flight at once. Default 8. */
  concurrency?: number;
  /** How long `close()` waits for pending deliveries before dead-lettering them (`closed`). Default 10 000. */
  closeTimeoutMs?: number;
  deadLetters: DeadLetterStore;
  logger: Logger;
  /** Timestamps (signature, dead letters) and Retry-After dates. */
  clock?: Clock;
  /** Waits between attempts; rejects when `signal` aborts (close). Default: a timer. */
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Jitter source in [0, 1). Default `Math.random`. */
  random?: () => number;
  fetch?: typeof fetch;
  /** Told when a delivery is finished: `delivered`, or the dead-letter reason (metrics). */
  onDelivery?: (result: 'delivered' | DeadLetterReason) => void;
}

interface Delivery {
  readonly ids: readonly string[];
  readonly body: string;
}

type Attempt =
  | { readonly ok: true; readonly status: number }
  | {
      readonly ok: false;
      readonly retryable: boolean;
      readonly error: string;
      readonly status?: number;
      readonly retryAfterMs?: number;
      readonly aborted?: boolean;
    };

/** Read at most this much of a response body (to free the connection); the rest is cancelled. */
const MAX_RESPONSE_BYTES = 64 * 1024;

/**
 * Posts events to one HTTP endpoint, signed (webhook-signature.ts), with retries and a
 * dead-letter store.
 *
 * `send()` only queues: it resolves at once, the channel having taken responsibility, and the
 * delivery runs in the background (at most `concurrency` at a time, `maxPending` queued or in
 * flight). A delivery is one POST of one event (the body is the event's proto JSON, as published
 * on NATS) or of a batch (`{"events":[<event>,...]}`). It succeeds on any 2xx. Network errors,
 * timeouts, 408, 425, 429 and 5xx are retried, up to `maxAttempts` in all, after a backoff with
 * full jitter, or after the receiver's `Retry-After` (429, 503; capped). Any other status
 * (3xx: redirects are not followed, so a signed body never goes to a host nobody configured;
 * 4xx) is final. A delivery that does not succeed becomes a dead letter and a warning.
 *
 * Delivery is at-least-once (a timed-out attempt may have landed) and unordered across retries
 * and concurrent deliveries: receivers de-duplicate by event id and order by event time or id.
 */
export class WebhookChannel implements NotificationChannel {
  readonly name: string;
  private readonly url: string;
  private readonly key: KeyObject;
  private readonly opts: Required<Omit<WebhookChannelOptions, 'name' | 'url' | 'secret' | 'maxRetryAfterMs' | 'onDelivery'>> & {
    maxRetryAfterMs: number;
  };
  private readonly onDelivery?: (result: 'delivered' | DeadLetterReason) => void;
  private readonly queue: Delivery[] = [];
  private active = 0;
  private idleWaiters: (() => void)[] = [];
  private closed = false;
  private closing: Promise<void> | undefined;
  /** Aborted when `close()` gives up waiting: cuts sleeps and requests short. */
  private readonly shutdown = new AbortController();

  constructor(opts: WebhookChannelOptions) {
    if (!opts.name) throw new RangeError('webhook channel: name must not be empty');
    checkUrl(opts.name, opts.url);
    if (!opts.secret) throw new RangeError(`webhook ${opts.name}: secret must not be empty`);
    this.name = opts.name;
    this.url = opts.url;
    // A KeyObject, so that inspecting or serializing the channel shows no secret.
    this.key = createSecretKey(Buffer.from(opts.secret, 'utf8'));
    const maxDelayMs = opts.maxDelayMs ?? 60_000;
    this.onDelivery = opts.onDelivery;
    this.opts = {
      timeoutMs: opts.timeoutMs ?? 5_000,
      maxAttempts: opts.maxAttempts ?? 6,
      baseDelayMs: opts.baseDelayMs ?? 500,
      maxDelayMs,
      maxRetryAfterMs: opts.maxRetryAfterMs ?? maxDelayMs,
      maxPending: opts.maxPending ?? 1_000,
      concurrency: opts.concurrency ?? 8,
      closeTimeoutMs: opts.closeTimeoutMs ?? 10_000,
      deadLetters: opts.deadLetters,
      logger: opts.logger,
      clock: opts.clock ?? systemClock,
      sleep: opts.sleep ?? sleep,
      random: opts.random ?? Math.random,
      fetch: opts.fetch ?? ((input, init) => fetch(input, init)),
    };
    for (const k of ['timeoutMs', 'maxAttempts', 'maxPending', 'concurrency'] as const) {
      if (!Number.isSafeInteger(this.opts[k]) || this.opts[k] < 1) {
        throw new RangeError(`webhook ${opts.name}: ${k} must be a positive integer, got ${this.opts[k]}`);
      }
    }
    for (const k of ['baseDelayMs', 'maxDelayMs', 'maxRetryAfterMs', 'closeTimeoutMs'] as const) {
      if (!Number.isFinite(this.opts[k]) || this.opts[k] < 0) {
        throw new RangeError(`webhook ${opts.name}: ${k} must be 0 or more, got ${this.opts[k]}`);
      }
    }
    // each delivery in flight listens for the shutdown once (its request or its backoff wait)
    setMaxListeners(this.opts.concurrency + 10, this.shutdown.signal);
  }

  /** Deliveries queued or in flight. */
  get pending(): number {
    return this.queue.length + this.active;
  }

  /**
   * Queues one delivery of `events` and resolves. Rejects only when the delivery can be neither
   * queued nor dead-lettered (queue full and the dead-letter store down), so that the caller can
   * retry it later.
   */
  async send(events: readonly WireEvent[]): Promise<void> {
    if (events.length === 0) return;
    const delivery: Delivery = { ids: events.map((e) => e.id), body: composeBody(events) };
    if (this.closed) {
      await this.deadLetter(delivery, { reason: 'closed', attempts: 0, lastError: 'channel closed' }, true);
      return;
    }
    if (this.pending >= this.opts.maxPending) {
      const lastError = `queue_full: ${this.opts.maxPending} deliveries pending`;
      await this.deadLetter(delivery, { reason: 'queue_full', attempts: 0, lastError }, true);
      return;
    }
    this.queue.push(delivery);
    this.pump();
  }

  /** Resolves when nothing is queued or in flight. */
  whenIdle(): Promise<void> {
    if (this.pending === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Stops taking deliveries (later ones are dead-lettered as `closed`) and waits for pending
   * ones, up to `timeoutMs` (default `closeTimeoutMs`); what is still pending then is cut short
   * and dead-lettered as `closed`.
   */
  close(timeoutMs = this.opts.closeTimeoutMs): Promise<void> {
    this.closed = true;
    this.closing ??= (async () => {
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), timeoutMs);
      });
      const gaveUp = await Promise.race([this.whenIdle().then(() => false), timedOut]);
      clearTimeout(timer);
      if (gaveUp) {
        this.opts.logger.warn(
          { channel: this.name, pending: this.pending },
          'webhook channel closing: pending deliveries cut short and dead-lettered',
        );
        this.shutdown.abort();
        await this.whenIdle();
      }
    })();
    return this.closing;
  }

  private pump(): void {
    while (this.active < this.opts.concurrency && this.queue.length > 0) {
      const delivery = this.queue.shift()!;
      this.active++;
      void this.deliver(delivery)
        .catch((err: unknown) => {
          // deliver() handles its own failures; this is a bug, but must not kill the worker
          this.opts.logger.error({ channel: this.name, eventIds: delivery.ids, err }, 'webhook delivery crashed');
        })
        .finally(() => {
          this.active--;
          this.pump();
          if (this.pending === 0) for (const wake of this.idleWaiters.splice(0)) wake();
        });
    }
  }

  private async deliver(d: Delivery): Promise<void> {
    const { maxAttempts } = this.opts;
    const signal = this.shutdown.signal;
    let attempts = 0;
    let firstAttemptAt: number | undefined;
    let lastAttemptAt: number | undefined;
    let last: Extract<Attempt, { ok: false }> | undefined;
    let reason: DeadLetterReason = 'exhausted';
    while (attempts < maxAttempts) {
      if (signal.aborted) {
        reason = 'closed';
        break;
      }
      const at = this.opts.clock.now();
      firstAttemptAt ??= at;
      lastAttemptAt = at;
      attempts++;
      const result = await this.attempt(d, at);
      if (result.ok) {
        this.opts.logger.debug({ channel: this.name, eventIds: d.ids, attempts, status: result.status }, 'webhook delivered');
        this.onDelivery?.('delivered');
        return;
      }
      last = result;
      if (result.aborted) {
        reason = 'closed';
        break;
      }
      if (!result.retryable) {
        reason = 'rejected';
        break;
      }
      if (attempts >= maxAttempts) break;
      const delayMs = result.retryAfterMs ?? this.backoff(attempts - 1);
      this.opts.logger.debug(
        { channel: this.name, eventIds: d.ids, attempt: attempts, error: result.error, delayMs },
        'webhook attempt failed; will retry',
      );
      try {
        await this.opts.sleep(delayMs, signal);
      } catch {
        reason = 'closed';
        break;
      }
    }
    let lastError = last?.error ?? 'channel closed';
    if (reason === 'closed' && last !== undefined && !last.aborted) lastError = `channel closed (last error: ${last.error})`;
    await this.deadLetter(
      d,
      { reason, attempts, lastError, lastStatus: last?.status, firstAttemptAt, lastAttemptAt },
      false,
    );
  }

  /** Full jitter: uniform in [0, min(maxDelay, base * 2^retry)]. */
  private backoff(retry: number): number {
    const ceiling = Math.min(this.opts.maxDelayMs, this.opts.baseDelayMs * 2 ** Math.min(retry, 52));
    return Math.floor(this.opts.random() * ceiling);
  }

  private async attempt(d: Delivery, at: number): Promise<Attempt> {
    const timestamp = Math.floor(at / 1000);
    const headers = {
      'Content-Type': 'application/json',
      'User-Agent': 'keyward',
      [WEBHOOK_HEADERS.eventId]: d.ids.join(','),
      [WEBHOOK_HEADERS.timestamp]: String(timestamp),
      [WEBHOOK_HEADERS.signature]: signWebhook(this.key, timestamp, d.body),
    };
    const controller = new AbortController();
    const onShutdown = (): void => controller.abort();
    this.shutdown.signal.addEventListener('abort', onShutdown, { once: true });
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      controller.abort();
    }, this.opts.timeoutMs);
    try {
      let res: Response;
      try {
        res = await this.opts.fetch(this.url, {
          method: 'POST',
          headers,
          body: d.body,
          redirect: 'manual',
          signal: controller.signal,
        });
      } catch (err) {
        if (timedOut) return { ok: false, retryable: true, error: `timeout after ${this.opts.timeoutMs} ms` };
        if (this.shutdown.signal.aborted) return { ok: false, retryable: false, error: 'channel closed', aborted: true };
        return { ok: false, retryable: true, error: `network error: ${describe(err)}` };
      }
      // The status decides; reading the body only frees the connection, so its failure does not count.
      await drain(res).catch(() => undefined);
      const status = res.status;
      if (status >= 200 && status < 300) return { ok: true, status };
      const error = `HTTP ${status}`;
      if (status === 408 || status === 425 || status === 429 || status >= 500) {
        const retryAfterMs = status === 429 || status === 503 ? this.retryAfter(res.headers.get('retry-after')) : undefined;
        return { ok: false, retryable: true, error, status, retryAfterMs };
      }
      return { ok: false, retryable: false, error: status >= 300 && status < 400 ? `${error} (redirects are not followed)` : error, status };
    } finally {
      clearTimeout(timer);
      this.shutdown.signal.removeEventListener('abort', onShutdown);
    }
  }

  /** `Retry-After` as delay-seconds or an HTTP date, capped; undefined when absent or unreadable. */
  private retryAfter(value: string | null): number | undefined {
    if (value === null) return undefined;
    const v = value.trim();
    let ms: number;
    if (/^\d+$/.test(v)) ms = Number(v) * 1000;
    else {
      const date = Date.parse(v);
      if (Number.isNaN(date)) return undefined;
      ms = date - this.opts.clock.now();
    }
    return Math.min(Math.max(0, ms), this.opts.maxRetryAfterMs);
  }

  /**
   * Records a failed delivery and warns. `rethrow`: whether a failing store is the caller's
   * problem (send) or only a log line (background delivery, nobody to tell).
   */
  private async deadLetter(
    d: Delivery,
    f: {
      reason: DeadLetterReason;
      attempts: number;
      lastError: string;
      lastStatus?: number;
      firstAttemptAt?: number;
      lastAttemptAt?: number;
    },
    rethrow: boolean,
  ): Promise<void> {
    const now = this.opts.clock.now();
    const record: DeadLetter = {
      channel: this.name,
      eventIds: d.ids,
      reason: f.reason,
      attempts: f.attempts,
      lastError: f.lastError,
      ...(f.lastStatus !== undefined ? { lastStatus: f.lastStatus } : {}),
      firstAttemptAt: f.firstAttemptAt ?? now,
      lastAttemptAt: f.lastAttemptAt ?? now,
      body: d.body,
    };
    this.onDelivery?.(f.reason);
    const fields = { channel: this.name, eventIds: d.ids, reason: f.reason, attempts: f.attempts, lastError: f.lastError };
    try {
      await this.opts.deadLetters.append(record);
    } catch (err) {
      this.opts.logger.error({ ...fields, err }, 'webhook delivery failed and its dead letter could not be recorded');
      if (rethrow) throw err;
      return;
    }
    this.opts.logger.warn(fields, 'webhook delivery failed; recorded a dead letter');
  }
}

/** One event: its body as is. Several: `{"events":[...]}` around the bodies, not re-serialized. */
export function composeBody(events: readonly WireEvent[]): string {
  if (events.length === 1) return events[0].body;
  return `{"events":[${events.map((e) => e.body).join(',')}]}`;
}

function checkUrl(name: string, url: string): void {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new RangeError(`webhook ${name}: url must be an http or https URL`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new RangeError(`webhook ${name}: url must be an http or https URL`);
  if (u.username || u.password) {
    throw new RangeError(`webhook ${name}: url must not contain user:password@ (fetch refuses it)`);
  }
}

function describe(err: unknown): string {
  // undici says "fetch failed" and puts the reason (ECONNREFUSED, a TLS error...) in `cause`.
  // Duck-typed: errors from Node's internals may come from another realm than this module's Error.
  const cause = errorLike(err)?.cause;
  const e = errorLike(cause) ?? errorLike(err);
  if (e === undefined) return String(err);
  const code = typeof e.code === 'string' ? e.code : undefined;
  if (!e.message) return code ?? 'unknown error'; // an AggregateError of several addresses has none
  return code !== undefined && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
}

function errorLike(v: unknown): { message: string; code?: unknown; cause?: unknown } | undefined {
  return typeof v === 'object' && v !== null && typeof (v as { message?: unknown }).message === 'string'
    ? (v as { message: string })
    : undefined;
}

async function drain(res: Response): Promise<void> {
  if (res.body === null) return;
  const reader = res.body.getReader();
  let read = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) return;
    read += value.byteLength;
    if (read > MAX_RESPONSE_BYTES) {
      await reader.cancel();
      return;
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(signal.reason);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    timer.unref();
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
