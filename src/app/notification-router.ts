import { PRIORITIES, type Priority } from '../domain/events';
import type { Logger } from '../logger';
import type { WireEvent } from '../ports/event-transport';
import type { NotificationChannel } from '../ports/notification-channel';

/**
 * A routing rule: events whose type matches one of `types` and whose priority is one of
 * `priorities` (empty: any) go to every channel of `channels`.
 *
 * A type is exact (`key.revoked`), a trailing wildcard on a dot boundary (`key.*`: every type
 * that starts with `key.`), or `*` (every type).
 */
export interface Route {
  readonly types: readonly string[];
  readonly priorities: readonly Priority[];
  readonly channels: readonly string[];
}

export interface BatchOptions {
  /** Low-priority events a channel's batch holds at most; a full batch is sent at once. Default 100. */
  maxSize?: number;
  /** How long the first low-priority event of a batch waits for company. Default 5000. */
  windowMs?: number;
}

/** Timer functions; injectable so tests can drive the batch window. */
export interface RouterTimers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface NotificationRouterOptions {
  /** Channels by the name routes use. */
  channels: ReadonlyMap<string, NotificationChannel>;
  routes: readonly Route[];
  batch?: BatchOptions;
  logger: Logger;
  timers?: RouterTimers;
}

/** Routes name channels that do not exist: a configuration error, found at start-up. */
export class UnknownChannelError extends Error {
  constructor(
    readonly unknown: readonly string[],
    readonly known: readonly string[],
  ) {
    super(`notification routes name unknown channel(s) ${unknown.join(', ')}; known: ${known.join(', ') || '(none)'}`);
    this.name = 'UnknownChannelError';
  }
}

/** A route that cannot match anything as written (bad type pattern, unknown priority, nothing listed). */
export class InvalidRouteError extends Error {
  constructor(
    readonly routeIndex: number,
    message: string,
  ) {
    super(`notification route ${routeIndex}: ${message}`);
    this.name = 'InvalidRouteError';
  }
}

export class RouterClosedError extends Error {
  constructor() {
    super('notification router is closed');
    this.name = 'RouterClosedError';
  }
}

/** `*`, `key.revoked`, `key.*`: lowercase dot-separated words, with at most a trailing `.*`. */
const TYPE_PATTERN = /^(\*|[a-z0-9_]+(\.[a-z0-9_]+)*(\.\*)?)$/;

export function isTypePattern(pattern: string): boolean {
  return TYPE_PATTERN.test(pattern);
}

export function typeMatches(pattern: string, type: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) return type.startsWith(pattern.slice(0, -1));
  return pattern === type;
}

interface CompiledRoute {
  readonly types: readonly string[];
  readonly priorities: ReadonlySet<Priority>;
  readonly channels: readonly NotificationChannel[];
}

interface Batch {
  events: WireEvent[];
  timer: unknown;
}

const realTimers: RouterTimers = {
  setTimeout(fn, ms) {
    const t = setTimeout(fn, ms);
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/** Distinct (type, priority) pairs remembered; event types are a short fixed list. */
const MAX_MEMO = 1_000;

/**
 * Sends each event to the channels its routes name (the union of every matching route, each
 * channel once). Critical, high and normal events go out at once, to all channels in parallel:
 * `dispatch` resolves when every channel has taken the event or failed, and one channel's failure
 * (logged) never holds back another. Low-priority events are batched per channel: a batch is
 * sent when it reaches `maxSize`, or `windowMs` after its first event, whichever comes first.
 * Batched events live in memory until then: a crash loses them (low priority means exactly that).
 */
export class NotificationRouter {
  private readonly routes: readonly CompiledRoute[];
  private readonly channels: ReadonlyMap<string, NotificationChannel>;
  private readonly maxSize: number;
  private readonly windowMs: number;
  private readonly logger: Logger;
  private readonly timers: RouterTimers;
  private readonly memo = new Map<string, readonly NotificationChannel[]>();
  private readonly batches = new Map<NotificationChannel, Batch>();
  private readonly inFlight = new Set<Promise<void>>();
  private closed = false;
  private closing: Promise<void> | undefined;

  constructor(opts: NotificationRouterOptions) {
    this.channels = opts.channels;
    this.logger = opts.logger;
    this.timers = opts.timers ?? realTimers;
    this.maxSize = opts.batch?.maxSize ?? 100;
    this.windowMs = opts.batch?.windowMs ?? 5_000;
    if (!Number.isSafeInteger(this.maxSize) || this.maxSize < 1) {
      throw new RangeError(`batch maxSize must be a positive integer, got ${this.maxSize}`);
    }
    if (!Number.isFinite(this.windowMs) || this.windowMs < 0) {
      throw new RangeError(`batch windowMs must be 0 or more, got ${this.windowMs}`);
    }
    const unknown = [...new Set(opts.routes.flatMap((r) => r.channels))].filter((c) => !opts.channels.has(c));
    if (unknown.length > 0) throw new UnknownChannelError(unknown, [...opts.channels.keys()]);
    this.routes = opts.routes.map((r, i) => compile(r, i, opts.channels));
  }

  /** The channels an event of this type and priority goes to, each once, in route order. */
  channelsFor(type: string, priority: Priority): readonly NotificationChannel[] {
    const memoKey = `${priority}|${type}`;
    let out = this.memo.get(memoKey);
    if (out === undefined) {
      const set = new Set<NotificationChannel>();
      for (const r of this.routes) {
        if (r.priorities.size > 0 && !r.priorities.has(priority)) continue;
        if (!r.types.some((p) => typeMatches(p, type))) continue;
        for (const c of r.channels) set.add(c);
      }
      out = [...set];
      if (this.memo.size < MAX_MEMO) this.memo.set(memoKey, out);
    }
    return out;
  }

  /** Low-priority events waiting in batches, over all channels. */
  get buffered(): number {
    let n = 0;
    for (const b of this.batches.values()) n += b.events.length;
    return n;
  }

  /**
   * Routes one event. Resolves once every target channel took it (or failed, which is logged),
   * or, for a low-priority event, once it is batched. Rejects only after `close()`.
   */
  async dispatch(event: WireEvent): Promise<void> {
    if (this.closed) throw new RouterClosedError();
    const targets = this.channelsFor(event.type, event.priority);
    if (targets.length === 0) return;
    if (event.priority === 'low') {
      const full: Promise<void>[] = [];
      for (const c of targets) {
        const p = this.enqueue(c, event);
        if (p) full.push(p);
      }
      await Promise.all(full);
      return;
    }
    await Promise.all(targets.map((c) => this.send(c, [event])));
  }

  /** Sends every batch now. */
  async flush(): Promise<void> {
    await Promise.all([...this.batches.keys()].map((c) => this.flushBatch(c)));
  }

  /** Refuses new events, sends the batches, waits for sends in flight, then closes every channel. */
  close(): Promise<void> {
    this.closed = true;
    this.closing ??= (async () => {
      await this.flush();
      await Promise.all([...this.inFlight]);
      const distinct = new Set(this.channels.values());
      await Promise.all(
        [...distinct].map(async (c) => {
          try {
            await c.close?.();
          } catch (err) {
            this.logger.error({ channel: c.name, err }, 'notification channel failed to close');
          }
        }),
      );
    })();
    return this.closing;
  }

  /** Adds to the channel's batch; returns the send when that filled it. */
  private enqueue(channel: NotificationChannel, event: WireEvent): Promise<void> | undefined {
    let batch = this.batches.get(channel);
    if (batch === undefined) {
      batch = { events: [], timer: undefined };
      this.batches.set(channel, batch);
      batch.timer = this.timers.setTimeout(() => void this.flushBatch(channel), this.windowMs);
    }
    batch.events.push(event);
    return batch.events.length >= this.maxSize ? this.flushBatch(channel) : undefined;
  }

  private flushBatch(channel: NotificationChannel): Promise<void> {
    const batch = this.batches.get(channel);
    if (batch === undefined) return Promise.resolve();
    this.batches.delete(channel);
    this.timers.clearTimeout(batch.timer);
    return this.send(channel, batch.events);
  }

  /** One channel's send; failures are logged, never thrown, so they cannot stop other channels. */
  private send(channel: NotificationChannel, events: readonly WireEvent[]): Promise<void> {
    const p = (async () => {
      try {
        await channel.send(events);
      } catch (err) {
        this.logger.error(
          { channel: channel.name, eventIds: events.map((e) => e.id), err },
          'notification channel failed to take events',
        );
      }
    })();
    this.inFlight.add(p);
    void p.finally(() => this.inFlight.delete(p));
    return p;
  }
}

function compile(r: Route, i: number, channels: ReadonlyMap<string, NotificationChannel>): CompiledRoute {
  if (r.types.length === 0) throw new InvalidRouteError(i, "types must not be empty (use ['*'] for every type)");
  const badType = r.types.find((t) => !isTypePattern(t));
  if (badType !== undefined) {
    throw new InvalidRouteError(i, `type ${JSON.stringify(badType)} must be an event type, a prefix ending in .* (key.*), or *`);
  }
  const badPriority = r.priorities.find((p) => !PRIORITIES.includes(p));
  if (badPriority !== undefined) {
    throw new InvalidRouteError(i, `priority ${JSON.stringify(badPriority)} must be one of ${PRIORITIES.join(', ')}`);
  }
  if (r.channels.length === 0) throw new InvalidRouteError(i, 'channels must not be empty');
  return {
    types: [...r.types],
    priorities: new Set(r.priorities),
    channels: r.channels.map((c) => channels.get(c)!),
  };
}
