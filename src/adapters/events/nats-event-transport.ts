import {
  AckPolicy,
  DeliverPolicy,
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  jetstream,
  jetstreamManager,
  type ConsumerConfig,
  type ConsumerMessages,
  type ConsumerNotification,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type StreamConfig,
} from '@nats-io/jetstream';
import { headers, nanos, type MsgHdrs, type NatsConnection } from '@nats-io/nats-core';
import { connect } from '@nats-io/transport-node';
import { parseWireEvent } from '../../codec/event-codec';
import type { Logger } from '../../logger';
import { startPublishSpan, withConsumeSpan } from '../../observability/messaging-spans';
import type { EventTransport, Subscription, WireEvent } from '../../ports/event-transport';
import { EventTransportUnavailableError } from './errors';

/*
 * keyward's events over NATS JetStream.
 *
 * Stream `KEYWARD_EVENTS` holds every event under `keyward.events.<service>.<type>` (an event of
 * no service uses `_`): file storage, limits retention (age and bytes, oldest discarded first),
 * and a de-duplication window on `Nats-Msg-Id` = the event id, so a relay that publishes the same
 * outbox entry twice (a lost PubAck, a leader change) stores it once. Every sidecar creates or
 * updates the stream when it connects and again after each reconnect (a server that lost its
 * store gets it back); the settings this adapter owns are put back if they differ.
 *
 * Two consumer kinds:
 *
 * - subscribeAll: an ordered consumer per subscription (ephemeral, unacknowledged, in server
 *   memory), for cache invalidation on every sidecar. It starts after the stream's last message
 *   at subscribe time ("new"), spelled as a start sequence rather than DeliverPolicy.New: nats.js
 *   resumes an ordered consumer from `last seen stream sequence + 1`, and a consumer that had not
 *   seen anything yet when it is recreated (after a server restart, say) would otherwise replay the
 *   whole stream from sequence 1. nats.js recreates it on a sequence gap, on missed heartbeats and
 *   after a reconnect when the server no longer knows it; this adapter also tracks the last
 *   sequence itself and, should the library give up, makes a new one from there. Messages at or
 *   below the last sequence seen are dropped, so the handler sees each event once, in order.
 *
 * - subscribeShared: the durable pull consumer `keyward-notifier`, which every sidecar pulls
 *   from, so each event goes to one of them. Explicit acks: ack once the handler resolved, nak with
 *   an exponential delay when it rejects (retry backoff per delivery), give up after `maxDeliver`
 *   deliveries. A handler that hangs (or a sidecar that dies) gets its messages redelivered after
 *   `ackWait`; a handler still running is kept alive with `working()`. No consumer `backoff` list:
 *   on nats-server 2.9 it replaces the nak delay from the second redelivery on (the server measures
 *   a nak'ed message against backoff[n] instead of ack_wait), so the delays are chosen here.
 *
 * Connection: reconnects forever with jitter; the first connection is awaited for at most
 * `startTimeout` by the factory, then keeps being tried in the background, so keyward starts while
 * NATS is down. Calls made while disconnected fail fast with EventTransportUnavailableError
 * (publish) or wait for the connection (subscriptions).
 */

export const EVENT_STREAM = 'KEYWARD_EVENTS';
export const EVENT_SUBJECT_PREFIX = 'keyward.events';
export const SHARED_CONSUMER = 'keyward-notifier';

const DAY_MS = 86_400_000;

export interface NatsEventTransportOptions {
  /** NATS server URL(s): `nats://host:4222`, or several comma-separated. */
  url: string;
  logger: Logger;
  /** Events older than this are dropped from the stream. Default 7 days. */
  streamMaxAge?: number;
  /** The stream keeps at most this many bytes, dropping the oldest. Default 1 GiB. */
  streamMaxBytes?: number;
  /** The same event id published again within this window is stored once. Default 2 minutes. */
  duplicateWindow?: number;
  /** Connection name, shown by the server's monitoring. */
  name?: string;
  /** How long the factory waits for the first connection before returning. Default 1000 ms. */
  startTimeout?: number;
  /** Delay between reconnect attempts (plus up to 20% jitter). Default 1000 ms. */
  reconnectTimeWait?: number;
  /** How long a publish waits for its PubAck, and a JetStream API call for its answer. Default 5000 ms. */
  requestTimeout?: number;
  /** subscribeShared: redelivery of a message not acked in time. Default 30 s. */
  ackWait?: number;
  /** subscribeShared: deliveries of one event at most. Default 10. */
  maxDeliver?: number;
  /** subscribeShared: delay before the redelivery after the n-th failed delivery. Default 500 ms * 2^(n-1), at most 60 s. */
  nakDelay?: (deliveryCount: number) => number;
  /** subscribeShared: events handled at once per subscription. Default 8. */
  sharedConcurrency?: number;
}

/** Connects (or starts connecting) and makes sure the stream exists; see the file comment. */
export async function createNatsEventTransport(opts: NatsEventTransportOptions): Promise<NatsEventTransport> {
  const t = new NatsEventTransport(opts);
  await t.start();
  return t;
}

/** `keyward.events.<service>.<type>`; characters a subject token cannot hold become `_`. */
export function eventSubject(e: Pick<WireEvent, 'service' | 'type'>): string {
  const service = e.service ? e.service.replace(/[^A-Za-z0-9_-]/g, '_') : '_';
  const type = e.type.replace(/[^A-Za-z0-9_.-]/g, '_');
  return `${EVENT_SUBJECT_PREFIX}.${service}.${type}`;
}

export class NatsEventTransport implements EventTransport {
  private readonly log: Logger;
  private readonly opts: Required<Omit<NatsEventTransportOptions, 'name' | 'logger'>> & { name?: string };
  private nc?: NatsConnection;
  private js?: JetStreamClient;
  private jsm?: JetStreamManager;
  private connected = false;
  private closing = false;
  private closedPromise?: Promise<void>;
  private streamReady = false;
  private ensuring?: Promise<void>;
  private firstConnect?: Promise<NatsConnection>;
  /** Set when connecting failed for good (bad URL, refused credentials). */
  private failed?: unknown;
  private readonly subs = new Set<ManagedSubscription>();
  private readonly connectWaiters = new Set<() => void>();
  /** Rejects the publishes awaiting a PubAck; called on disconnect (their acks will not come). */
  private readonly pendingAcks = new Set<(err: Error) => void>();

  constructor(opts: NatsEventTransportOptions) {
    this.log = opts.logger.child({ component: 'nats-events' });
    this.opts = {
      url: opts.url,
      name: opts.name,
      streamMaxAge: positive('streamMaxAge', opts.streamMaxAge, 7 * DAY_MS),
      streamMaxBytes: positive('streamMaxBytes', opts.streamMaxBytes, 1024 ** 3),
      duplicateWindow: positive('duplicateWindow', opts.duplicateWindow, 120_000),
      startTimeout: nonNegative('startTimeout', opts.startTimeout, 1000),
      reconnectTimeWait: positive('reconnectTimeWait', opts.reconnectTimeWait, 1000),
      requestTimeout: positive('requestTimeout', opts.requestTimeout, 5000),
      ackWait: positive('ackWait', opts.ackWait, 30_000),
      maxDeliver: positive('maxDeliver', opts.maxDeliver, 10),
      nakDelay: opts.nakDelay ?? ((n) => Math.min(500 * 2 ** Math.max(0, n - 1), 60_000)),
      sharedConcurrency: positive('sharedConcurrency', opts.sharedConcurrency, 8),
    };
    if (this.opts.duplicateWindow > this.opts.streamMaxAge) {
      throw new RangeError('duplicateWindow must not exceed streamMaxAge');
    }
  }

  /**
   * Starts connecting; resolves once connected and the stream is in place, or after
   * `startTimeout` while NATS cannot be reached (the connection keeps being tried). Rejects only
   * for errors that retrying cannot fix (a malformed URL, refused credentials).
   */
  async start(): Promise<void> {
    if (this.firstConnect) throw new Error('already started');
    const jitter = Math.max(1, Math.round(this.opts.reconnectTimeWait / 5));
    this.firstConnect = connect({
      servers: this.opts.url.split(',').map((s) => s.trim()).filter(Boolean),
      name: this.opts.name,
      waitOnFirstConnect: true,
      maxReconnectAttempts: -1,
      reconnectTimeWait: this.opts.reconnectTimeWait,
      reconnectJitter: jitter,
      pingInterval: 10_000,
      maxPingOut: 3,
      timeout: 2000,
      // the documented way to abandon the first-connect loop: a throwing handler rejects it
      reconnectToServer: () => {
        if (this.closing) throw new Error('transport closed');
        return null;
      },
    });
    const connected = this.firstConnect.then((nc) => this.onConnected(nc));
    connected.catch((err: unknown) => {
      this.failed = err;
      if (!this.closing) this.log.error({ err }, 'cannot connect to NATS; events stay in the outbox');
      this.wakeConnectWaiters();
    });
    const timeout = new Promise<'timeout'>((resolve) => setTimeout(resolve, this.opts.startTimeout, 'timeout').unref());
    const first = await Promise.race([connected.then(() => 'ok' as const), timeout]);
    if (first === 'timeout') {
      this.log.warn({ url: withoutCredentials(this.opts.url) }, 'NATS not reachable yet; events wait in the outbox and subscriptions start when it is');
      return;
    }
    await this.ensureStream().catch(() => undefined); // started by onConnected, which logs a failure
  }

  async publish(event: WireEvent): Promise<void> {
    const js = this.js;
    if (this.closing) throw new EventTransportUnavailableError('event transport is closed');
    if (!js || !this.connected) throw new EventTransportUnavailableError('NATS is not connected');
    try {
      await this.ensureStream();
    } catch (err) {
      throw new EventTransportUnavailableError(`event stream not available: ${message(err)}`, { cause: err });
    }
    const subject = eventSubject(event);
    // a PRODUCER span under the operation that made the event; consumers hang below it
    const span = startPublishSpan(subject, event);
    const h = headers();
    h.set('Content-Type', 'application/json');
    if (span.traceparent) h.set('traceparent', span.traceparent);
    let abort!: (err: Error) => void;
    const disconnected = new Promise<never>((_, reject) => {
      abort = reject;
    });
    this.pendingAcks.add(abort);
    try {
      // a request sent just before a disconnect would otherwise wait out its whole timeout
      const ack = await Promise.race([
        js.publish(subject, event.body, { msgID: event.id, headers: h, timeout: this.opts.requestTimeout }),
        disconnected,
      ]);
      span.end();
      if (ack.duplicate) this.log.debug({ eventId: event.id, seq: ack.seq }, 'event was already in the stream');
    } catch (err) {
      span.end(err);
      // maybe the stream is gone (a server that lost its store): check again next time
      this.streamReady = false;
      throw new EventTransportUnavailableError(`publishing event ${event.id} failed: ${message(err)}`, { cause: err });
    } finally {
      this.pendingAcks.delete(abort);
    }
  }

  async subscribeAll(handler: (event: WireEvent) => void): Promise<Subscription> {
    return this.addSubscription(new OrderedSubscription(this, handler));
  }

  async subscribeShared(handler: (event: WireEvent) => Promise<void>): Promise<Subscription> {
    return this.addSubscription(new SharedSubscription(this, handler));
  }

  async ping(): Promise<void> {
    const nc = this.nc;
    if (this.closing) throw new EventTransportUnavailableError('event transport is closed');
    if (!nc || !this.connected) throw new EventTransportUnavailableError('NATS is not connected');
    try {
      await withTimeout(nc.flush(), Math.min(this.opts.requestTimeout, 2000), 'NATS flush');
    } catch (err) {
      throw new EventTransportUnavailableError(`NATS does not answer: ${message(err)}`, { cause: err });
    }
  }

  /** Stops the subscriptions (in-flight shared handlers finish first), then drains the connection. */
  close(): Promise<void> {
    this.closedPromise ??= this.doClose();
    return this.closedPromise;
  }

  private async doClose(): Promise<void> {
    this.closing = true;
    this.wakeConnectWaiters();
    await Promise.all([...this.subs].map((s) => s.close()));
    const nc = this.nc;
    if (nc) {
      if (this.connected) {
        try {
          await withTimeout(nc.drain(), 5000, 'NATS drain');
        } catch (err) {
          this.log.warn({ err, name: this.opts.name }, 'NATS drain failed; closing');
        }
      }
      if (!nc.isClosed()) await nc.close();
    } else {
      // still dialling: the reconnectToServer hook makes the loop give up on its next attempt
      await this.firstConnect?.then((c) => c.close(), () => undefined);
    }
  }

  // ---- internals shared with the subscriptions ----

  /** @internal */
  get logger(): Logger {
    return this.log;
  }

  /** @internal */
  get settings(): NatsEventTransport['opts'] {
    return this.opts;
  }

  /** @internal */
  isClosing(): boolean {
    return this.closing;
  }

  /** @internal */
  isConnected(): boolean {
    return this.connected && !this.closing;
  }

  /** @internal Resolves with the clients once connected; undefined when the transport closes first. */
  async clients(): Promise<{ js: JetStreamClient; jsm: JetStreamManager } | undefined> {
    while (!this.closing && this.failed === undefined) {
      if (this.js && this.jsm && this.connected) return { js: this.js, jsm: this.jsm };
      await new Promise<void>((resolve) => {
        this.connectWaiters.add(resolve);
      });
    }
    return undefined;
  }

  /** @internal Creates the stream, or puts back the settings this adapter owns; shared by concurrent callers. */
  ensureStream(): Promise<void> {
    if (this.streamReady) return Promise.resolve();
    this.ensuring ??= this.doEnsureStream().finally(() => {
      this.ensuring = undefined;
    });
    return this.ensuring;
  }

  private async doEnsureStream(): Promise<void> {
    const jsm = this.jsm;
    if (!jsm) throw new EventTransportUnavailableError('NATS is not connected');
    const want = {
      subjects: [`${EVENT_SUBJECT_PREFIX}.>`],
      max_age: nanos(this.opts.streamMaxAge),
      max_bytes: this.opts.streamMaxBytes,
      duplicate_window: nanos(this.opts.duplicateWindow),
      discard: DiscardPolicy.Old,
    };
    for (let attempt = 0; ; attempt++) {
      try {
        const info = await jsm.streams.info(EVENT_STREAM);
        const c = info.config;
        if (c.storage !== StorageType.File || c.retention !== RetentionPolicy.Limits) {
          this.log.warn({ storage: c.storage, retention: c.retention }, `stream ${EVENT_STREAM} exists with other storage or retention; leaving those as they are`);
        }
        if (!sameStreamSettings(c, want)) {
          await jsm.streams.update(EVENT_STREAM, { ...c, ...want });
          this.log.info({ stream: EVENT_STREAM }, 'event stream settings updated');
        }
        break;
      } catch (err) {
        if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) throw err;
      }
      try {
        await jsm.streams.add({ name: EVENT_STREAM, storage: StorageType.File, retention: RetentionPolicy.Limits, ...want });
        this.log.info({ stream: EVENT_STREAM }, 'event stream created');
        break;
      } catch (err) {
        // another sidecar created it meanwhile: look again (once)
        if (attempt > 0) throw err;
      }
    }
    this.streamReady = true;
  }

  private async onConnected(nc: NatsConnection): Promise<void> {
    if (this.closing) {
      await nc.close();
      return;
    }
    this.nc = nc;
    this.js = jetstream(nc, { timeout: this.opts.requestTimeout });
    this.jsm = await jetstreamManager(nc, { timeout: this.opts.requestTimeout, checkAPI: false });
    this.connected = true;
    this.log.info({ server: nc.getServer() }, 'connected to NATS');
    void this.watchStatus(nc);
    this.ensureStream().catch((err: unknown) => this.log.warn({ err }, 'cannot set up the event stream yet; retrying on the next publish or reconnect'));
    this.wakeConnectWaiters();
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    try {
      for await (const s of nc.status()) {
        switch (s.type) {
          case 'disconnect':
            this.connected = false;
            for (const abort of this.pendingAcks) abort(new Error('NATS disconnected before the PubAck came; the event may be stored (its retry is de-duplicated)'));
            if (!this.closing) this.log.warn({ server: s.server }, 'disconnected from NATS; reconnecting');
            break;
          case 'reconnect':
            this.connected = true;
            this.streamReady = false; // a restarted server may have lost it: check on the way
            this.log.info({ server: s.server }, 'reconnected to NATS');
            this.ensureStream().catch((err: unknown) => this.log.warn({ err }, 'cannot set up the event stream after reconnecting'));
            this.wakeConnectWaiters();
            break;
          case 'error':
            this.log.warn({ err: s.error }, 'NATS error');
            break;
          case 'slowConsumer':
            this.log.warn({ pending: s.pending }, 'NATS slow consumer');
            break;
          default:
        }
      }
    } catch (err) {
      this.log.warn({ err }, 'NATS status stream ended');
    }
    this.connected = false;
    if (!this.closing) this.log.error('NATS connection closed');
  }

  private wakeConnectWaiters(): void {
    for (const w of this.connectWaiters) w();
    this.connectWaiters.clear();
  }

  private async addSubscription(sub: ManagedSubscription): Promise<Subscription> {
    if (this.closing) throw new EventTransportUnavailableError('event transport is closed');
    this.subs.add(sub);
    sub.onClosed(() => this.subs.delete(sub));
    // while connected, wait for the consumer so that "new" means after this call
    await sub.start(this.connected ? this.opts.requestTimeout * 2 : 0);
    return sub;
  }
}

interface ManagedSubscription extends Subscription {
  start(waitMs: number): Promise<void>;
  onClosed(fn: () => void): void;
}

/** The loop both subscription kinds share: (re)create a consumer, consume it, retry on failure. */
abstract class ConsumerLoop implements ManagedSubscription {
  protected closed = false;
  protected messages?: ConsumerMessages;
  private loop?: Promise<void>;
  private readyWaiter?: () => void;
  private wake?: () => void;
  private readonly closedListeners: (() => void)[] = [];
  private closing?: Promise<void>;
  private signalClosed!: () => void;
  private readonly closedSignal = new Promise<undefined>((resolve) => {
    this.signalClosed = () => resolve(undefined);
  });

  constructor(protected readonly t: NatsEventTransport) {}

  protected abstract readonly what: string;
  /** Creates the consumer and starts consuming it. */
  protected abstract open(c: { js: JetStreamClient; jsm: JetStreamManager }): Promise<ConsumerMessages>;
  /** Handles one message; must not throw. */
  protected abstract handle(m: JsMsg): Promise<void> | void;

  async start(waitMs: number): Promise<void> {
    const ready = new Promise<void>((resolve) => {
      this.readyWaiter = resolve;
    });
    this.loop = this.run();
    if (waitMs > 0) {
      await Promise.race([ready, sleep(waitMs)]);
    }
  }

  onClosed(fn: () => void): void {
    this.closedListeners.push(fn);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.closed = true;
      this.signalClosed();
      this.wake?.();
      await this.messages?.close().catch(() => undefined);
      await this.loop;
      await this.drained();
      for (const fn of this.closedListeners) fn();
    })();
    return this.closing;
  }

  /** Waits for in-flight work after the consumer stopped. */
  protected async drained(): Promise<void> {}

  /** Waits for a slot before the next message (bounded concurrency). */
  protected async beforeNext(): Promise<void> {}

  /** Sees the consumer's notifications; may close `messages` to have the consumer made anew at once. */
  protected onStatus(_s: ConsumerNotification, _messages: ConsumerMessages, _jsm: JetStreamManager): void {}

  /** Set by onStatus when it closed the messages on purpose: reopen without pausing. */
  protected reopenNow = false;

  private async run(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      const c = await Promise.race([this.t.clients(), this.closedSignal]); // NATS may be down for long
      if (!c || this.closed) break;
      try {
        await this.t.ensureStream();
        const messages = await this.open(c);
        if (this.closed) {
          await messages.close();
          break;
        }
        this.messages = messages;
        failures = 0;
        this.reopenNow = false;
        this.readyWaiter?.();
        void this.watch(messages, c.jsm);
        for await (const m of messages) {
          await this.handle(m);
          await this.beforeNext();
          if (this.closed) break;
        }
        if (this.closed) break;
        const err = await messages.closed();
        if (this.reopenNow) continue;
        this.t.logger.warn({ err }, `${this.what} consumer stopped; creating it again`);
      } catch (err) {
        if (this.closed) break;
        failures++;
        this.t.logger.warn({ err }, `cannot start the ${this.what} consumer; retrying`);
      }
      await this.pause(Math.min(250 * 2 ** Math.min(failures, 5), 5000));
    }
    this.readyWaiter?.();
  }

  private async watch(messages: ConsumerMessages, jsm: JetStreamManager): Promise<void> {
    try {
      for await (const s of messages.status()) {
        this.onStatus(s, messages, jsm);
        switch (s.type) {
          case 'ordered_consumer_recreated':
          case 'consumer_deleted':
          case 'consumer_not_found':
          case 'stream_not_found':
          case 'heartbeats_missed':
          case 'exceeded_limits':
            this.t.logger.debug({ status: s }, `${this.what} consumer status`);
            break;
          default:
        }
      }
    } catch {
      // the iterator ends with the messages
    }
  }

  private pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }
}

/** subscribeAll: an ordered consumer; see the file comment. */
class OrderedSubscription extends ConsumerLoop {
  protected readonly what = 'ordered event';
  /** The last stream sequence handed to the handler (or skipped), 0 before the first. */
  private lastSeq?: number;

  constructor(
    t: NatsEventTransport,
    private readonly handler: (event: WireEvent) => void,
  ) {
    super(t);
  }

  protected async open({ js, jsm }: { js: JetStreamClient; jsm: JetStreamManager }): Promise<ConsumerMessages> {
    if (this.lastSeq === undefined) {
      // "new": after the stream's last message now; fixed from here on
      const info = await jsm.streams.info(EVENT_STREAM);
      this.lastSeq = info.state.last_seq;
    }
    const consumer = await js.consumers.get(EVENT_STREAM, {
      filter_subjects: `${EVENT_SUBJECT_PREFIX}.>`,
      opt_start_seq: this.lastSeq + 1,
    });
    // short pulls: a stalled or vanished consumer is noticed (and recreated) within seconds
    return consumer.consume({ max_messages: 256, expires: 5000 });
  }

  /**
   * nats.js recreates an ordered consumer (after a reconnect to a server that lost it, or a
   * sequence gap) at the right sequence, but keeps counting the old consumer's outstanding pull,
   * so the new one is pulled for few or no messages until two heartbeats are missed (seconds). So
   * the recreated consumer is dropped, and this subscription makes a fresh one right away, after
   * its own last sequence: the same position, pulled in full.
   */
  protected override onStatus(s: ConsumerNotification, messages: ConsumerMessages, jsm: JetStreamManager): void {
    if (s.type !== 'ordered_consumer_recreated' || this.closed) return;
    this.t.logger.debug({ after: this.lastSeq }, 'ordered event consumer lost; making a new one');
    this.reopenNow = true;
    void messages.close().catch(() => undefined);
    jsm.consumers.delete(EVENT_STREAM, s.name).catch(() => undefined);
  }

  protected handle(m: JsMsg): void {
    if (this.lastSeq !== undefined && m.seq <= this.lastSeq) return; // seen before a recreate
    this.lastSeq = m.seq;
    const event = decode(m, this.t.logger);
    if (!event) return;
    try {
      withConsumeSpan(m.subject, event, undefined, () => this.handler(event));
    } catch (err) {
      this.t.logger.error({ err, eventId: event.id, seq: m.seq }, 'event handler threw');
    }
  }
}

/** subscribeShared: the durable `keyward-notifier` pull consumer; see the file comment. */
class SharedSubscription extends ConsumerLoop {
  protected readonly what = 'shared event';
  private readonly inFlight = new Set<Promise<void>>();

  constructor(
    t: NatsEventTransport,
    private readonly handler: (event: WireEvent) => Promise<void>,
  ) {
    super(t);
  }

  protected async open({ js, jsm }: { js: JetStreamClient; jsm: JetStreamManager }): Promise<ConsumerMessages> {
    const s = this.t.settings;
    const config: Partial<ConsumerConfig> = {
      durable_name: SHARED_CONSUMER,
      description: 'keyward notifications: each event to one sidecar',
      ack_policy: AckPolicy.Explicit,
      deliver_policy: DeliverPolicy.New,
      ack_wait: nanos(s.ackWait),
      max_deliver: s.maxDeliver,
      max_ack_pending: 10_000,
    };
    try {
      await jsm.consumers.add(EVENT_STREAM, config);
    } catch (err) {
      // newer servers refuse "create" over a durable with other settings: update those instead
      const { ack_wait, max_deliver, max_ack_pending, description } = config;
      await jsm.consumers.update(EVENT_STREAM, SHARED_CONSUMER, { ack_wait, max_deliver, max_ack_pending, description }).catch(() => {
        throw err;
      });
    }
    const consumer = await js.consumers.get(EVENT_STREAM, SHARED_CONSUMER);
    return consumer.consume({ max_messages: s.sharedConcurrency, expires: 5000 });
  }

  protected handle(m: JsMsg): void {
    const p = this.process(m).finally(() => this.inFlight.delete(p));
    this.inFlight.add(p);
  }

  protected override async beforeNext(): Promise<void> {
    while (this.inFlight.size >= this.t.settings.sharedConcurrency) await Promise.race(this.inFlight);
  }

  protected override async drained(): Promise<void> {
    await Promise.all(this.inFlight);
  }

  private async process(m: JsMsg): Promise<void> {
    const s = this.t.settings;
    const event = decode(m, this.t.logger);
    if (!event) {
      m.term('not a keyward event');
      return;
    }
    const attempt = m.info.deliveryCount;
    // keep the message ours while a slow handler runs
    const keepAlive = setInterval(() => m.working(), Math.max(1000, Math.floor(s.ackWait / 3)));
    try {
      await withConsumeSpan(m.subject, event, SHARED_CONSUMER, () => this.handler(event));
      clearInterval(keepAlive);
      m.ack();
    } catch (err) {
      clearInterval(keepAlive);
      if (attempt >= s.maxDeliver) {
        this.t.logger.error({ err, eventId: event.id, attempt }, 'event handler failed on the last delivery; giving up on the event');
        m.term('handler failed on every delivery');
      } else {
        const delay = Math.max(0, Math.round(s.nakDelay(attempt)));
        this.t.logger.warn({ err, eventId: event.id, attempt, retryInMs: delay }, 'event handler failed; the event will be redelivered');
        m.nak(delay);
      }
    }
  }
}

/** The event of a message, with the traceparent header; undefined (logged) when it is not one of ours. */
function decode(m: JsMsg, log: Logger): WireEvent | undefined {
  try {
    const event = parseWireEvent(m.string());
    const traceparent = header(m.headers, 'traceparent');
    return traceparent ? { ...event, traceparent } : event;
  } catch (err) {
    log.warn({ err, subject: m.subject, seq: m.seq }, 'skipping a message that is not a keyward event');
    return undefined;
  }
}

function header(h: MsgHdrs | undefined, name: string): string | undefined {
  const v = h?.get(name);
  return v ? v : undefined;
}

function sameStreamSettings(c: StreamConfig, want: Pick<StreamConfig, 'subjects' | 'max_age' | 'max_bytes' | 'duplicate_window' | 'discard'>): boolean {
  return (
    c.max_age === want.max_age &&
    c.max_bytes === want.max_bytes &&
    c.duplicate_window === want.duplicate_window &&
    c.discard === want.discard &&
    want.subjects.every((s) => c.subjects?.includes(s))
  );
}

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v <= 0) throw new RangeError(`${name} must be a positive number, got ${v}`);
  return v;
}

function nonNegative(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`${name} must not be negative, got ${v}`);
  return v;
}

/** The URL(s) for logs: user and password (or token) removed. */
function withoutCredentials(url: string): string {
  return url.replace(/\/\/[^@/]*@/g, '//');
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
