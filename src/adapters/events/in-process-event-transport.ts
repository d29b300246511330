import type { Logger } from '../../logger';
import type { EventTransport, Subscription, WireEvent } from '../../ports/event-transport';
import { EventTransportUnavailableError } from './errors';

/*
 * The event transport of embedded mode (no NATS): one process, so "every sidecar" is this one.
 *
 * - publish hands the event to every subscribeAll handler synchronously, in publish order, before
 *   it resolves; a throwing handler is logged and does not stop the others.
 * - subscribeShared handlers take turns (round robin): each event goes to one of them; one that
 *   rejects gets the event again later (the next handler in turn), with exponential delays, at
 *   most `maxSharedAttempts` times in all, then it is logged and dropped, like JetStream's
 *   max_deliver.
 * - An event id published again within `duplicateWindow` is ignored, as JetStream de-duplicates
 *   on Nats-Msg-Id, so a relay retry behaves the same in both modes.
 */

export interface InProcessEventTransportOptions {
  logger?: Logger;
  /** Deliveries of one event to shared handlers at most. Default 10. */
  maxSharedAttempts?: number;
  /** Delay before the redelivery after the n-th failed one. Default 100 ms * 2^(n-1), at most 30 s. */
  retryDelay?: (attempt: number) => number;
  /** Default 2 minutes, as the NATS stream. */
  duplicateWindow?: number;
  /** Clock for the de-duplication window (tests). */
  now?: () => number;
}

type AllHandler = (event: WireEvent) => void;
type SharedHandler = (event: WireEvent) => Promise<void>;

export class InProcessEventTransport implements EventTransport {
  private readonly all = new Set<AllHandler>();
  private readonly shared: SharedHandler[] = [];
  private next = 0;
  private closed = false;
  /** Event id -> time published, oldest first (Map keeps insertion order). */
  private readonly recent = new Map<string, number>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly maxAttempts: number;
  private readonly retryDelay: (attempt: number) => number;
  private readonly window: number;
  private readonly now: () => number;

  constructor(private readonly opts: InProcessEventTransportOptions = {}) {
    this.maxAttempts = Math.max(1, Math.floor(opts.maxSharedAttempts ?? 10));
    this.retryDelay = opts.retryDelay ?? ((n) => Math.min(100 * 2 ** Math.max(0, n - 1), 30_000));
    this.window = opts.duplicateWindow ?? 120_000;
    this.now = opts.now ?? Date.now;
  }

  async publish(event: WireEvent): Promise<void> {
    if (this.closed) throw new EventTransportUnavailableError('event transport is closed');
    if (this.isDuplicate(event.id)) return;
    for (const h of [...this.all]) {
      try {
        h(event);
      } catch (err) {
        this.opts.logger?.error({ err, eventId: event.id }, 'event handler threw');
      }
    }
    if (this.shared.length > 0) this.deliverShared(event, 1);
  }

  async subscribeAll(handler: AllHandler): Promise<Subscription> {
    if (this.closed) throw new EventTransportUnavailableError('event transport is closed');
    this.all.add(handler);
    return {
      close: async () => {
        this.all.delete(handler);
      },
    };
  }

  async subscribeShared(handler: SharedHandler): Promise<Subscription> {
    if (this.closed) throw new EventTransportUnavailableError('event transport is closed');
    this.shared.push(handler);
    return {
      close: async () => {
        const i = this.shared.indexOf(handler);
        if (i >= 0) this.shared.splice(i, 1);
      },
    };
  }

  async ping(): Promise<void> {
    if (this.closed) throw new EventTransportUnavailableError('event transport is closed');
  }

  /** Cancels pending redeliveries and waits for the shared handlers running now. */
  async close(): Promise<void> {
    this.closed = true;
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.all.clear();
    await Promise.allSettled([...this.inFlight]);
    this.shared.length = 0;
  }

  private deliverShared(event: WireEvent, attempt: number): void {
    if (this.closed) return;
    if (this.shared.length === 0) {
      this.opts.logger?.warn({ eventId: event.id }, 'no shared subscriber left; event dropped');
      return;
    }
    const handler = this.shared[this.next++ % this.shared.length];
    const run = (async () => {
      try {
        await handler(event);
      } catch (err) {
        if (attempt >= this.maxAttempts) {
          this.opts.logger?.error({ err, eventId: event.id, attempt }, 'event handler failed on the last delivery; giving up on the event');
          return;
        }
        const delay = Math.max(0, this.retryDelay(attempt));
        this.opts.logger?.warn({ err, eventId: event.id, attempt, retryInMs: delay }, 'event handler failed; the event will be redelivered');
        const timer = setTimeout(() => {
          this.timers.delete(timer);
          this.deliverShared(event, attempt + 1);
        }, delay);
        this.timers.add(timer);
      }
    })();
    this.inFlight.add(run);
    void run.finally(() => this.inFlight.delete(run));
  }

  private isDuplicate(id: string): boolean {
    const now = this.now();
    for (const [k, t] of this.recent) {
      if (now - t < this.window) break;
      this.recent.delete(k);
    }
    if (this.recent.has(id)) return true;
    this.recent.set(id, now);
    return false;
  }
}
