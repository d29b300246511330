import { createNotificationChannels } from '../../../../src/adapters/notify/create-channels';
import type { DeadLetter } from '../../../../src/adapters/notify/dead-letter-store';
import { LogChannel } from '../../../../src/adapters/notify/log-channel';
import { MemoryDeadLetterStore } from '../../../../src/adapters/notify/memory-dead-letter-store';
import { NoopChannel } from '../../../../src/adapters/notify/noop-channel';
import { WebhookChannel } from '../../../../src/adapters/notify/webhook-channel';
import { makeRecord } from '../../helpers/records';
import { captureLogger, wireEvent } from '../../helpers/events';

function letter(i: number): DeadLetter {
  return {
    channel: 'hook',
    eventIds: [`evt_${i}`],
    reason: 'exhausted',
    attempts: 6,
    lastError: 'HTTP 503',
    lastStatus: 503,
    firstAttemptAt: i,
    lastAttemptAt: i + 1,
    body: `{"id":"evt_${i}"}`,
  };
}

describe('MemoryDeadLetterStore', () => {
  it('lists the newest first, up to the limit', async () => {
    const s = new MemoryDeadLetterStore();
    for (let i = 0; i < 5; i++) await s.append(letter(i));
    expect((await s.list(3)).map((r) => r.eventIds[0])).toEqual(['evt_4', 'evt_3', 'evt_2']);
    expect(await s.list(100)).toHaveLength(5);
    expect(await s.list(0)).toEqual([]);
    expect(s.size).toBe(5);
  });

  it('is a bounded ring: the oldest records make room', async () => {
    const s = new MemoryDeadLetterStore({ capacity: 3 });
    for (let i = 0; i < 7; i++) await s.append(letter(i));
    expect(s.size).toBe(3);
    expect((await s.list(10)).map((r) => r.eventIds[0])).toEqual(['evt_6', 'evt_5', 'evt_4']);
  });

  it('refuses a bad capacity or limit', async () => {
    expect(() => new MemoryDeadLetterStore({ capacity: 0 })).toThrow(RangeError);
    await expect(new MemoryDeadLetterStore().list(-1)).rejects.toThrow(RangeError);
    await expect(new MemoryDeadLetterStore().list(1.5)).rejects.toThrow(RangeError);
  });
});

describe('LogChannel', () => {
  it('writes one info line per event with only id, type, service, keyId, priority and actor', async () => {
    const log = captureLogger('info');
    const ch = new LogChannel({ logger: log.logger });
    expect(ch.name).toBe('log');
    const a = wireEvent({ actor: 'key_admin1' });
    const b = wireEvent({ payload: { type: 'key.created', key: makeRecord({ metadata: { email: 'a@example.com' } }) } });
    await ch.send([a, b]);
    const lines = log.lines;
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatchObject({ level: 30, msg: 'keyward event' });
    expect(lines[0].event).toEqual({
      id: a.id,
      type: 'key.revoked',
      service: 'orders',
      keyId: 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A',
      priority: 'critical',
      actor: 'key_admin1',
    });
    expect(lines[1].event).toMatchObject({ id: b.id, type: 'key.created', priority: 'normal', actor: 'root' });
    expect(log.text()).not.toContain('a@example.com'); // nothing from the payload
    expect(log.text()).not.toContain('sk_abcd');
  });

  it('logs without the actor when the body is not JSON', async () => {
    const log = captureLogger('info');
    await new LogChannel({ logger: log.logger }).send([{ ...wireEvent(), body: 'not json' }]);
    expect(log.lines[0].event).not.toHaveProperty('actor');
  });
});

describe('createNotificationChannels', () => {
  it('builds log, nats (a no-op) and one webhook channel per setting', async () => {
    const { logger } = captureLogger();
    const channels = createNotificationChannels({
      webhooks: [{ name: 'security', url: 'https://h.example/x', secret: 's'.repeat(16), timeoutMs: 1000, maxAttempts: 2 }],
      deadLetters: new MemoryDeadLetterStore(),
      logger,
    });
    expect([...channels.keys()]).toEqual(['log', 'nats', 'security']);
    expect(channels.get('log')).toBeInstanceOf(LogChannel);
    expect(channels.get('nats')).toBeInstanceOf(NoopChannel);
    expect(channels.get('security')).toBeInstanceOf(WebhookChannel);
    await expect(channels.get('nats')!.send([wireEvent()])).resolves.toBeUndefined();
    await (channels.get('security') as WebhookChannel).close();
  });

  it('refuses a webhook named like a built-in channel', () => {
    const { logger } = captureLogger();
    const webhooks = [{ name: 'log', url: 'https://h.example/x', secret: 's'.repeat(16), timeoutMs: 1000, maxAttempts: 2 }];
    expect(() => createNotificationChannels({ webhooks, deadLetters: new MemoryDeadLetterStore(), logger })).toThrow(
      'notification channel name log is taken',
    );
  });
});
