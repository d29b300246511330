import { LRUCache } from 'lru-cache';
import type { EventPayload } from '../domain/events';
import type { Decision } from '../domain/validation';

export interface DenialEventsOptions {
  /** Publishes an event (the caller builds ids and sends it to the outbox). */
  emit: (payload: EventPayload, ctx: { service: string; keyId: string }) => void;
  /** At most one event per key and denial per window; the rest are counted into the next one. */
  throttleMs: number;
}

/**
 * Turns denials on the hot path into `ratelimit.exceeded` and `policy.violation` events, at most
 * one per key and reason per window, so a client hammering a limit makes one event a window
 * (carrying how many denials it stands for), not a flood on NATS.
 */
export class DenialEvents {
  private readonly last = new LRUCache<string, { at: number; count: number }>({ max: 50_000 });

  constructor(private readonly opts: DenialEventsOptions) {}

  record(d: Decision, now: number): void {
    if ((d.code !== 'RATE_LIMITED' && d.code !== 'FORBIDDEN') || d.record === undefined) return;
    const key = `${d.record.id}|${d.reason}`;
    const seen = this.last.get(key);
    if (seen !== undefined && now - seen.at < this.opts.throttleMs) {
      seen.count++;
      return;
    }
    const denied = 1 + (seen?.count ?? 0);
    this.last.set(key, { at: now, count: 0 });
    const ctx = { service: d.record.service, keyId: d.record.id };
    if (d.code === 'RATE_LIMITED') {
      const name = d.reason.slice('rate_limit:'.length);
      const limit = d.limits?.rateLimits.find((l) => l.name === name)?.limit ?? 0;
      this.opts.emit({ type: 'ratelimit.exceeded', limitName: name, limit, deniedCount: denied }, ctx);
    } else {
      const rule = d.reason === 'outside_time_window' ? 'time_window' : d.reason === 'policy_missing' ? 'policy' : 'network';
      this.opts.emit({ type: 'policy.violation', rule, reason: d.reason }, ctx);
    }
  }
}
