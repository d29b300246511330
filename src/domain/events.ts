import type { KeyRecord } from './key-record';
import type { Policy } from './policy';

/**
 * keyward's events, as plain data. The wire schema is `keyward.v1.Event` (proto/keyward/v1/
 * event.proto); `codec/event-codec.ts` is the only place that maps one to the other,
 * and it never writes a key's hash or secret.
 */
export type EventType =
  | 'key.created'
  | 'key.updated'
  | 'key.revoked'
  | 'key.rotated'
  | 'key.expired'
  | 'key.deleted'
  | 'key.rotation_due'
  | 'quota.exceeded'
  | 'ratelimit.exceeded'
  | 'policy.violation'
  | 'policy.created'
  | 'policy.updated'
  | 'policy.deleted';

export const EVENT_TYPES: readonly EventType[] = [
  'key.created',
  'key.updated',
  'key.revoked',
  'key.rotated',
  'key.expired',
  'key.deleted',
  'key.rotation_due',
  'quota.exceeded',
  'ratelimit.exceeded',
  'policy.violation',
  'policy.created',
  'policy.updated',
  'policy.deleted',
];

export type Priority = 'critical' | 'high' | 'normal' | 'low';
export const PRIORITIES: readonly Priority[] = ['critical', 'high', 'normal', 'low'];

export type EventPayload =
  | { readonly type: 'key.created'; readonly key: KeyRecord }
  | { readonly type: 'key.updated'; readonly key: KeyRecord; readonly changedFields: readonly string[] }
  | { readonly type: 'key.revoked'; readonly key: KeyRecord; readonly reason: string }
  | { readonly type: 'key.deleted'; readonly key: KeyRecord }
  | { readonly type: 'key.rotated'; readonly key: KeyRecord; readonly successorKeyId: string; readonly graceEndsAt: number }
  | { readonly type: 'key.expired'; readonly key: KeyRecord }
  | { readonly type: 'key.rotation_due'; readonly key: KeyRecord; readonly dueAt: number }
  | { readonly type: 'quota.exceeded'; readonly quota: string; readonly limit: number }
  | { readonly type: 'ratelimit.exceeded'; readonly limitName: string; readonly limit: number; readonly deniedCount: number }
  | { readonly type: 'policy.violation'; readonly rule: string; readonly reason: string }
  | { readonly type: 'policy.created' | 'policy.updated' | 'policy.deleted'; readonly policy: Policy };

export interface KeywardEvent {
  /** `evt_` + ULID: unique and time-ordered; the NATS de-duplication id. */
  readonly id: string;
  readonly type: EventType;
  /** Milliseconds since the epoch. */
  readonly time: number;
  readonly service: string;
  /** Empty when the event concerns no single key. */
  readonly keyId: string;
  /** `root`, an admin key id, or `keyward` for the system (scheduler, limits). */
  readonly actor: string;
  readonly priority: Priority;
  readonly payload: EventPayload;
}

/** Revocations must reach people at once; floods of denials can wait for a batch. */
export function defaultPriority(payload: EventPayload): Priority {
  switch (payload.type) {
    case 'key.revoked':
      return 'critical';
    case 'key.deleted':
    case 'key.expired':
    case 'key.rotated':
    case 'quota.exceeded':
      return 'high';
    case 'key.updated':
      return payload.changedFields.includes('enabled') && payload.key.state === 'disabled' ? 'high' : 'normal';
    case 'ratelimit.exceeded':
      return 'low';
    case 'policy.updated':
    case 'policy.deleted':
      return 'high';
    default:
      return 'normal';
  }
}

/** Events after which a sidecar must drop or refresh its cached record of the key. */
export function invalidatesKey(type: EventType): boolean {
  return type === 'key.updated' || type === 'key.revoked' || type === 'key.rotated' || type === 'key.expired' || type === 'key.deleted';
}

/** Events after which sidecars must drop their cached policies of the event's service. */
export function invalidatesPolicies(type: EventType): boolean {
  return type === 'policy.updated' || type === 'policy.deleted' || type === 'policy.created';
}

/** Builds events with fresh ids; `newId` is injected so tests are deterministic. */
export function makeEvent(
  payload: EventPayload,
  ctx: { id: string; time: number; actor: string; service?: string; keyId?: string },
): KeywardEvent {
  const key = 'key' in payload ? payload.key : undefined;
  const policy = 'policy' in payload ? payload.policy : undefined;
  return {
    id: ctx.id,
    type: payload.type,
    time: ctx.time,
    service: ctx.service ?? key?.service ?? policy?.service ?? '',
    keyId: ctx.keyId ?? key?.id ?? '',
    actor: ctx.actor,
    priority: defaultPriority(payload),
    payload,
  };
}
