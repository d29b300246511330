import { makeEvent, type EventPayload, type EventType, type KeywardEvent } from '../domain/events';
import type { Clock } from '../domain/clock';
import type { KeyIdGenerator } from '../domain/key-id';
import type { ValidationCache } from '../adapters/cache/validation-cache';
import { toWireEvent } from '../codec/event-codec';
import type { Logger } from '../logger';
import type { NewAuditEntry } from '../ports/audit-log';
import type { EventOutbox } from '../ports/event-outbox';
import type { AuditRecorder } from './audit-recorder';
import type { KeyChange } from './key-admin';

export interface KeyChangeEffectsOptions {
  cache?: ValidationCache;
  outbox: EventOutbox;
  audit: AuditRecorder;
  clock: Clock;
  eventIds: KeyIdGenerator;
  logger: Logger;
  /** The W3C traceparent of the current operation, if tracing is on. */
  traceparent?: () => string | undefined;
}

/**
 * What follows a committed key change, in this order: this sidecar's cache takes the new state
 * at once; the event goes to the durable outbox (the relay publishes it to NATS, and from there
 * every sidecar's cache and the notification channels hear of it); the audit trail records it.
 * The change is committed whatever happens here, so failures are logged, not thrown: the cache
 * TTL bounds how long other sidecars can miss a lost event.
 */
export function keyChangeEffects(opts: KeyChangeEffectsOptions): (change: KeyChange) => Promise<void> {
  return async (change) => {
    updateCache(opts, change);
    const events = eventsOf(opts, change, () => opts.eventIds.next(opts.clock.now()));
    const [outboxResult, auditResult] = await write(opts, change, events, false);
    if (outboxResult.status === 'rejected') {
      opts.logger.error({ err: outboxResult.reason, eventIds: events.map((e) => e.id), kind: change.kind }, 'event not queued: other sidecars learn of this change only when their cache entry expires');
    }
    if (auditResult.status === 'rejected') {
      opts.logger.error({ err: auditResult.reason, eventIds: events.map((e) => e.id), kind: change.kind }, 'audit entry not written');
    }
  };
}

/** Gives each event of a change its id: `index` counts the change's events from 0. */
export type EventIdOf = (type: EventType, index: number) => string;

/**
 * The same effects for the lifecycle scheduler, which must not lose an event nor duplicate one
 * across a crash: events get the ids the caller derives from the step (`idOf`), the outbox and
 * audit appends are idempotent by those ids, and a failure is thrown (the scheduler then leaves
 * the step undone, to emit again with the same ids on its next run). The cache is not touched
 * here: `emit` may run before the step's write, and `cached` after it.
 */
export interface LifecycleEffects {
  emit(change: KeyChange, idOf: EventIdOf): Promise<void>;
  cached(change: KeyChange): void;
}

export function lifecycleEffects(opts: KeyChangeEffectsOptions): LifecycleEffects {
  return {
    async emit(change, idOf) {
      let i = 0;
      const events = eventsOf(opts, change, (type) => idOf(type, i++));
      const results = await write(opts, change, events, true);
      for (const r of results) if (r.status === 'rejected') throw r.reason;
    },
    cached(change) {
      updateCache(opts, change);
    },
  };
}

function updateCache(opts: KeyChangeEffectsOptions, change: KeyChange): void {
  if (change.kind === 'deleted') opts.cache?.invalidate(change.record.hash);
  else opts.cache?.put(change.record);
  if (change.kind === 'rotated') opts.cache?.put(change.successor);
}

function eventsOf(opts: KeyChangeEffectsOptions, change: KeyChange, idOf: (type: EventType) => string): KeywardEvent[] {
  const now = opts.clock.now();
  return payloadsOf(change).map((payload) => makeEvent(payload, { id: idOf(payload.type), time: now, actor: change.actor }));
}

async function write(
  opts: KeyChangeEffectsOptions,
  change: KeyChange,
  events: readonly KeywardEvent[],
  dedupe: boolean,
): Promise<[PromiseSettledResult<void>, PromiseSettledResult<void>]> {
  const traceparent = opts.traceparent?.();
  const audit = events.map(auditEntryOf);
  const dedupeIds = events.map((e) => e.id);
  if (change.kind === 'secret_claimed') {
    // Not an event (nothing changes for validators), but the trail must show who took the secret.
    audit.push({ time: opts.clock.now(), service: change.record.service, keyId: change.record.id, type: 'key.secret_claimed', actor: change.actor, detail: { hint: change.record.hint } });
  }
  return Promise.allSettled([
    (async () => {
      for (const event of events) await opts.outbox.append({ ...toWireEvent(event), ...(traceparent && { traceparent }) }, { dedupe });
    })(),
    audit.length === 0 ? Promise.resolve() : opts.audit.append(audit, dedupe ? { dedupeIds } : undefined),
  ]);
}

function payloadsOf(c: KeyChange): EventPayload[] {
  switch (c.kind) {
    case 'created':
      return [{ type: 'key.created', key: c.record }];
    case 'updated':
      return [{ type: 'key.updated', key: c.record, changedFields: c.changedFields }];
    case 'revoked':
      return [{ type: 'key.revoked', key: c.record, reason: c.reason }];
    case 'deleted':
      return [{ type: 'key.deleted', key: c.record }];
    case 'rotated':
      // The successor is a new key (its own `key.created`), then the old one is superseded.
      return [
        { type: 'key.created', key: c.successor },
        { type: 'key.rotated', key: c.record, successorKeyId: c.successor.id, graceEndsAt: c.record.graceEndsAt! },
      ];
    case 'expired':
      return [{ type: 'key.expired', key: c.record }];
    case 'rotation_due':
      return [{ type: 'key.rotation_due', key: c.record, dueAt: c.dueAt }];
    case 'secret_claimed':
      return [];
  }
}

export function auditEntryOf(e: KeywardEvent): NewAuditEntry {
  const detail: Record<string, string> = { event_id: e.id };
  const p = e.payload;
  if (p.type === 'key.revoked' && p.reason) detail.reason = p.reason;
  if (p.type === 'key.updated') detail.changed_fields = p.changedFields.join(',');
  if ('key' in p) detail.hint = p.key.hint;
  return { time: e.time, service: e.service, keyId: e.keyId, type: e.type, actor: e.actor, detail };
}
