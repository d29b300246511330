import { DenialEvents } from '../../../src/app/denial-events';
import { ManualClock } from '../../../src/domain/clock';
import type { EventPayload } from '../../../src/domain/events';
import type { KeyRecord } from '../../../src/domain/key-record';
import type { Decision, LimitSnapshot } from '../../../src/domain/validation';
import { makeRecord } from '../helpers/records';

const T0 = 1_700_000_000_000;
const WINDOW = 60_000;

const keyA = makeRecord({ id: 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR0A', service: 'orders' });
const keyB = makeRecord({ id: 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR0B', service: 'billing' });

const limits: LimitSnapshot = {
  rateLimits: [
    { name: 'rps', limit: 10, remaining: 0, resetAt: T0 + 100 },
    { name: 'per-day', limit: 5000, remaining: 12, resetAt: T0 + 1000 },
  ],
};

const rateLimited = (record: KeyRecord, name = 'rps'): Decision => ({ code: 'RATE_LIMITED', reason: `rate_limit:${name}`, record, limits });
const forbidden = (record: KeyRecord, reason: string): Decision => ({ code: 'FORBIDDEN', reason, record });

function setup() {
  const emitted: { payload: EventPayload; ctx: { service: string; keyId: string } }[] = [];
  const clock = new ManualClock(T0);
  const events = new DenialEvents({ emit: (payload, ctx) => emitted.push({ payload, ctx }), throttleMs: WINDOW });
  const record = (d: Decision) => events.record(d, clock.now());
  return { emitted, clock, record };
}

describe('DenialEvents', () => {
  it('RATE_LIMITED becomes ratelimit.exceeded with the limit name, its limit and the key context', () => {
    const env = setup();
    env.record(rateLimited(keyA, 'per-day'));
    expect(env.emitted).toEqual([
      {
        payload: { type: 'ratelimit.exceeded', limitName: 'per-day', limit: 5000, deniedCount: 1 },
        ctx: { service: 'orders', keyId: keyA.id },
      },
    ]);
  });

  it('a limit name missing from the snapshot reports limit 0', () => {
    const env = setup();
    env.record({ code: 'RATE_LIMITED', reason: 'rate_limit:gone', record: keyA });
    expect(env.emitted[0].payload).toEqual({ type: 'ratelimit.exceeded', limitName: 'gone', limit: 0, deniedCount: 1 });
  });

  it.each([
    ['ip_not_allowed', 'network'],
    ['client_ip_required', 'network'],
    ['outside_time_window', 'time_window'],
    ['policy_missing', 'policy'],
  ])('FORBIDDEN %s becomes policy.violation with rule %s', (reason, rule) => {
    const env = setup();
    env.record(forbidden(keyB, reason));
    expect(env.emitted).toEqual([{ payload: { type: 'policy.violation', rule, reason }, ctx: { service: 'billing', keyId: keyB.id } }]);
  });

  it('ignores other outcomes and decisions without a record', () => {
    const env = setup();
    for (const code of ['VALID', 'NOT_FOUND', 'REVOKED', 'EXPIRED', 'INSUFFICIENT_SCOPE', 'USAGE_EXCEEDED', 'MALFORMED'] as const) {
      env.record({ code, reason: 'x', record: keyA });
    }
    env.record({ code: 'FORBIDDEN', reason: 'ip_not_allowed' });
    env.record({ code: 'RATE_LIMITED', reason: 'rate_limit:rps' });
    expect(env.emitted).toEqual([]);
  });

  it('throttles per key and reason: one event per window, the next one carrying the suppressed count', () => {
    const env = setup();
    env.record(rateLimited(keyA));
    for (let i = 0; i < 4; i++) {
      env.clock.advance(1000);
      env.record(rateLimited(keyA));
    }
    expect(env.emitted).toHaveLength(1);
    env.clock.set(T0 + WINDOW - 1);
    env.record(rateLimited(keyA)); // still inside the window: the 5th suppressed
    expect(env.emitted).toHaveLength(1);
    env.clock.set(T0 + WINDOW);
    env.record(rateLimited(keyA));
    expect(env.emitted.map((e) => (e.payload as { deniedCount: number }).deniedCount)).toEqual([1, 6]);
    // the window restarts at the emitted event; the count starts over
    env.clock.advance(WINDOW - 1);
    env.record(rateLimited(keyA));
    env.clock.advance(1);
    env.record(rateLimited(keyA));
    expect(env.emitted.map((e) => (e.payload as { deniedCount: number }).deniedCount)).toEqual([1, 6, 2]);
  });

  it('different keys, different limits and different reasons are throttled separately', () => {
    const env = setup();
    env.record(rateLimited(keyA, 'rps'));
    env.record(rateLimited(keyA, 'per-day'));
    env.record(rateLimited(keyB, 'rps'));
    env.record(forbidden(keyA, 'ip_not_allowed'));
    env.record(forbidden(keyA, 'outside_time_window'));
    env.record(forbidden(keyA, 'ip_not_allowed'));
    env.record(rateLimited(keyA, 'rps'));
    expect(env.emitted.map((e) => [e.ctx.keyId, e.payload.type, 'limitName' in e.payload ? e.payload.limitName : (e.payload as { rule: string }).rule])).toEqual([
      [keyA.id, 'ratelimit.exceeded', 'rps'],
      [keyA.id, 'ratelimit.exceeded', 'per-day'],
      [keyB.id, 'ratelimit.exceeded', 'rps'],
      [keyA.id, 'policy.violation', 'network'],
      [keyA.id, 'policy.violation', 'time_window'],
    ]);
  });

  it('a throttled policy violation is emitted again after the window', () => {
    const env = setup();
    env.record(forbidden(keyA, 'ip_not_allowed'));
    env.clock.advance(WINDOW - 1);
    env.record(forbidden(keyA, 'ip_not_allowed'));
    env.clock.advance(1);
    env.record(forbidden(keyA, 'ip_not_allowed'));
    expect(env.emitted).toHaveLength(2);
  });

  it('throttle 0 emits every denial', () => {
    const emitted: EventPayload[] = [];
    const events = new DenialEvents({ emit: (p) => emitted.push(p), throttleMs: 0 });
    for (let i = 0; i < 3; i++) events.record(rateLimited(keyA), T0);
    expect(emitted).toHaveLength(3);
    expect(emitted.every((p) => (p as { deniedCount: number }).deniedCount === 1)).toBe(true);
  });
});
