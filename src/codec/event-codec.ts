import type { EventType, KeywardEvent, Priority } from '../domain/events';
import { Event, EventPriority } from '../gen/keyward/v1/event.pb';
import type { WireEvent } from '../ports/event-transport';
import { toProtoPolicy } from './policy-mapping';
import { toApiKey } from './proto-mapping';

const PRIORITY: Record<Priority, EventPriority> = {
  critical: EventPriority.EVENT_PRIORITY_CRITICAL,
  high: EventPriority.EVENT_PRIORITY_HIGH,
  normal: EventPriority.EVENT_PRIORITY_NORMAL,
  low: EventPriority.EVENT_PRIORITY_LOW,
};

/** The proto form of an event. Key records go through `toApiKey`, which has no hash field. */
export function toProtoEvent(e: KeywardEvent): Event {
  const p = e.payload;
  const base: Event = {
    id: e.id,
    type: e.type,
    time: new Date(e.time),
    service: e.service,
    keyId: e.keyId,
    actor: e.actor,
    priority: PRIORITY[e.priority],
  };
  switch (p.type) {
    case 'key.created':
      return { ...base, keyCreated: { key: toApiKey(p.key) } };
    case 'key.updated':
      return { ...base, keyUpdated: { key: toApiKey(p.key), changedFields: [...p.changedFields] } };
    case 'key.revoked':
      return { ...base, keyRevoked: { key: toApiKey(p.key), reason: p.reason } };
    case 'key.deleted':
      return { ...base, keyDeleted: { key: toApiKey(p.key) } };
    case 'key.rotated':
      return { ...base, keyRotated: { key: toApiKey(p.key), successorKeyId: p.successorKeyId, graceEndTime: new Date(p.graceEndsAt) } };
    case 'key.expired':
      return { ...base, keyExpired: { key: toApiKey(p.key) } };
    case 'key.rotation_due':
      return { ...base, keyRotationDue: { key: toApiKey(p.key), dueTime: new Date(p.dueAt) } };
    case 'quota.exceeded':
      return { ...base, quotaExceeded: { quota: p.quota, limit: p.limit } };
    case 'ratelimit.exceeded':
      return { ...base, ratelimitExceeded: { limitName: p.limitName, limit: p.limit, deniedCount: p.deniedCount } };
    case 'policy.violation':
      return { ...base, policyViolation: { rule: p.rule, reason: p.reason } };
    case 'policy.created':
    case 'policy.updated':
    case 'policy.deleted':
      return { ...base, policyChanged: { policy: toProtoPolicy(p.policy, false) } };
  }
}

export function toWireEvent(e: KeywardEvent): WireEvent {
  return {
    id: e.id,
    type: e.type,
    time: e.time,
    service: e.service,
    keyId: e.keyId,
    priority: e.priority,
    body: JSON.stringify(Event.toJSON(toProtoEvent(e))),
  };
}

const FROM_PRIORITY = new Map<EventPriority, Priority>(Object.entries(PRIORITY).map(([k, v]) => [v, k as Priority]));

/** Parses a published body back into its routing fields; throws on anything that is not one of ours. */
export function parseWireEvent(body: string): WireEvent {
  const e = Event.fromJSON(JSON.parse(body));
  const priority = FROM_PRIORITY.get(e.priority);
  if (!e.id || !e.type || !e.time || priority === undefined) throw new Error('not a keyward event');
  return { id: e.id, type: e.type as EventType, time: e.time.getTime(), service: e.service, keyId: e.keyId, priority, body };
}
