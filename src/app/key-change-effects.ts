import { makeEvent, type EventPayload, type KeywardEvent } from '../domain/events';
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
    const { record } = change;
    if (change.kind === 'deleted') opts.cache?.invalidate(record.hash);
    else opts.cache?.put(record);

    const now = opts.clock.now();
    const event = makeEvent(payloadOf(change), { id: opts.eventIds.next(now), time: now, actor: change.actor });
    const traceparent = opts.traceparent?.();
    const wire = { ...toWireEvent(event), ...(traceparent && { traceparent }) };
    const [outboxResult, auditResult] = await Promise.allSettled([
      opts.outbox.append(wire),
      opts.audit.append([auditEntryOf(event)]),
    ]);
    if (outboxResult.status === 'rejected') {
      opts.logger.error({ err: outboxResult.reason, eventId: event.id, type: event.type }, 'event not queued: other sidecars learn of this change only when their cache entry expires');
    }
    if (auditResult.status === 'rejected') {
      opts.logger.error({ err: auditResult.reason, eventId: event.id, type: event.type }, 'audit entry not written');
    }
  };
}

function payloadOf(c: KeyChange): EventPayload {
  switch (c.kind) {
    case 'created':
      return { type: 'key.created', key: c.record };
    case 'updated':
      return { type: 'key.updated', key: c.record, changedFields: c.changedFields };
    case 'revoked':
      return { type: 'key.revoked', key: c.record, reason: c.reason };
    case 'deleted':
      return { type: 'key.deleted', key: c.record };
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
