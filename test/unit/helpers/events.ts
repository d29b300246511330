import pino from 'pino';
import { toWireEvent } from '../../../src/codec/event-codec';
import { makeEvent, type EventPayload, type Priority } from '../../../src/domain/events';
import type { Logger } from '../../../src/logger';
import type { WireEvent } from '../../../src/ports/event-transport';
import { makeRecord } from './records';

let seq = 0;

/** A real wire event (encoded by the codec), with a fresh id; override priority or payload. */
export function wireEvent(opts: { payload?: EventPayload; priority?: Priority; actor?: string; id?: string } = {}): WireEvent {
  const payload = opts.payload ?? { type: 'key.revoked', key: makeRecord(), reason: 'leaked' };
  const id = opts.id ?? `evt_${String(++seq).padStart(26, '0')}`;
  const e = makeEvent(payload, { id, time: 1_732_212_345_123, actor: opts.actor ?? 'root' });
  return toWireEvent(opts.priority ? { ...e, priority: opts.priority } : e);
}

/** A wire event of any type and priority, for routing tests (the body is not the point there). */
export function routed(type: string, priority: Priority, id = `evt_${String(++seq).padStart(26, '0')}`): WireEvent {
  return { id, type: type as WireEvent['type'], time: 0, service: 'orders', keyId: 'key_x', priority, body: `{"id":"${id}"}` };
}

/** A pino logger whose JSON lines land in `lines` (parsed). */
export function captureLogger(level = 'debug'): { logger: Logger; lines: Record<string, unknown>[]; text: () => string } {
  const raw: string[] = [];
  const logger = pino({ level }, { write: (s: string) => void raw.push(s) });
  return {
    logger,
    get lines() {
      return raw.map((s) => JSON.parse(s) as Record<string, unknown>);
    },
    text: () => raw.join(''),
  };
}
