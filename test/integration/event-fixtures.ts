import pino from 'pino';
import { toWireEvent } from '../../src/codec/event-codec';
import { makeEvent } from '../../src/domain/events';
import { KeyIdGenerator } from '../../src/domain/key-id';
import type { Logger } from '../../src/logger';
import type { WireEvent } from '../../src/ports/event-transport';

const ids = new KeyIdGenerator();
let counter = 0;

/** A real event in wire form (through the codec), with a fresh `evt_` id; `n` lands in the body. */
export function wireEvent(opts: { service?: string; n?: number; traceparent?: string } = {}): WireEvent {
  const n = opts.n ?? counter++;
  const id = `evt_${ids.next(Date.now()).slice(4)}`;
  const e = makeEvent({ type: 'quota.exceeded', quota: `q${n}`, limit: n }, { id, time: Date.now(), actor: 'root', service: opts.service ?? 'orders' });
  const w = toWireEvent(e);
  return opts.traceparent ? { ...w, traceparent: opts.traceparent } : w;
}

/** Silent unless KEYWARD_TEST_LOG is set (e.g. `debug`). */
export function testLogger(): Logger {
  return pino({ level: process.env.KEYWARD_TEST_LOG ?? 'silent' });
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `cond` until true or `timeoutMs` passes; throws with `what` on timeout. */
export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}
