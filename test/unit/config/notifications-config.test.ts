import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DEFAULT_ROUTES,
  formatPath,
  isKnownTypePattern,
  NotificationConfigError,
  notificationRouteSchema,
  parseNotificationSettings,
  webhookSchema,
} from '../../../src/config/notifications-config';

const SECRET = 'whsec_0123456789abcdef';
const hook = (over: Record<string, unknown> = {}) => ({ name: 'security', url: 'https://hooks.example.com/k', secret: SECRET, ...over });

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyward-notify-config-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The error's lines, `path: message`. */
function problems(raw: unknown): string[] {
  let caught: unknown;
  try {
    parseNotificationSettings(raw);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(NotificationConfigError);
  const e = caught as NotificationConfigError;
  expect(e.name).toBe('NotificationConfigError');
  expect(e.message.split('\n')[0]).toBe('invalid notification settings:');
  const lines = e.issues.map((i) => `${i.path}: ${i.message}`);
  for (const l of lines) expect(e.message).toContain(l);
  return lines;
}

describe('parseNotificationSettings: defaults and good values', () => {
  it('with nothing configured: no webhooks, every event to log, batches of 100 per 5 s', () => {
    const expected = { webhooks: [], routes: DEFAULT_ROUTES, batch: { maxSize: 100, windowMs: 5_000 } };
    expect(parseNotificationSettings({})).toEqual(expected);
    expect(parseNotificationSettings(undefined)).toEqual(expected);
    expect(parseNotificationSettings({ grpcAddr: '127.0.0.1:1' })).toEqual(expected); // other settings are not its business
    expect(DEFAULT_ROUTES).toEqual([{ types: ['*'], priorities: [], channels: ['log'] }]);
  });

  it('reads a full configuration, with defaults per webhook', () => {
    const s = parseNotificationSettings({
      webhooks: [hook(), hook({ name: 'ops-2', url: 'http://10.0.0.5:8080/in', timeout: '250ms', maxAttempts: 20 })],
      notificationRoutes: [
        { types: ['key.revoked', 'key.*'], priorities: ['critical', 'high'], channels: ['security', 'log'] },
        { types: ['*'], channels: ['nats', 'ops-2'] },
      ],
      notificationBatch: { maxSize: 50, window: '2s' },
    });
    expect(s.webhooks).toEqual([
      { name: 'security', url: 'https://hooks.example.com/k', secret: SECRET, timeoutMs: 5_000, maxAttempts: 6 },
      { name: 'ops-2', url: 'http://10.0.0.5:8080/in', secret: SECRET, timeoutMs: 250, maxAttempts: 20 },
    ]);
    expect(s.routes).toEqual([
      { types: ['key.revoked', 'key.*'], priorities: ['critical', 'high'], channels: ['security', 'log'] },
      { types: ['*'], priorities: [], channels: ['nats', 'ops-2'] },
    ]);
    expect(s.batch).toEqual({ maxSize: 50, windowMs: 2_000 });
  });

  it('takes JSON text, as from KEYWARD_WEBHOOKS and KEYWARD_NOTIFICATION_ROUTES', () => {
    const s = parseNotificationSettings({
      webhooks: JSON.stringify([hook({ timeout: 1500 })]),
      notificationRoutes: JSON.stringify([{ types: ['quota.exceeded'], channels: ['security'] }]),
      notificationBatch: '{"window":"1m"}',
    });
    expect(s.webhooks[0].timeoutMs).toBe(1_500);
    expect(s.routes).toEqual([{ types: ['quota.exceeded'], priorities: [], channels: ['security'] }]);
    expect(s.batch).toEqual({ maxSize: 100, windowMs: 60_000 });
  });

  it('reads secretFile, trimmed', () => {
    const path = join(dir, 'secret');
    writeFileSync(path, `${SECRET}\n`);
    const s = parseNotificationSettings({ webhooks: [{ name: 'a', url: 'https://h.example/', secretFile: path }] });
    expect(s.webhooks[0].secret).toBe(SECRET);
    const viaReader = parseNotificationSettings(
      { webhooks: [{ name: 'a', url: 'https://h.example/', secretFile: '/virtual' }] },
      { readFile: () => ' from-the-reader-123 ' },
    );
    expect(viaReader.webhooks[0].secret).toBe('from-the-reader-123');
  });

  it('accepts empty routes (no notifications beyond NATS) as configured', () => {
    expect(parseNotificationSettings({ notificationRoutes: [] }).routes).toEqual([]);
  });
});

describe('parseNotificationSettings: every bad value is named', () => {
  it.each<[string, Record<string, unknown>, string]>([
    ['name: uppercase', hook({ name: 'Security' }), 'webhooks[0].name: must be 1 to 63 lowercase letters, digits and -, starting with a letter or digit'],
    ['name: leading dash', hook({ name: '-x' }), 'webhooks[0].name: must be 1 to 63'],
    ['name: too long', hook({ name: 'a'.repeat(64) }), 'webhooks[0].name: must be 1 to 63'],
    ['name: missing', { url: 'https://h.example/', secret: SECRET }, 'webhooks[0].name: must be a string'],
    ['name: built in', hook({ name: 'log' }), 'webhooks[0].name: log is a built-in channel name'],
    ['name: nats', hook({ name: 'nats' }), 'webhooks[0].name: nats is a built-in channel name'],
    ['url: ftp', hook({ url: 'ftp://h.example/' }), 'webhooks[0].url: must be an http or https URL'],
    ['url: not a URL', hook({ url: 'hooks.example.com/x' }), 'webhooks[0].url: must be an http or https URL'],
    ['url: spaces', hook({ url: 'https://h.example/a b' }), 'webhooks[0].url: must be an http or https URL'],
    ['url: credentials', hook({ url: 'https://user:pw@h.example/' }), 'webhooks[0].url: must not contain user:password@'],
    ['url: number', hook({ url: 42 }), 'webhooks[0].url: must be a string'],
    ['secret: short', hook({ secret: 'short' }), 'webhooks[0].secret: must be at least 16 characters'],
    ['secret: none', hook({ secret: undefined }), 'webhooks[0].secret: set exactly one of secret and secretFile'],
    ['secret: both', hook({ secretFile: '/x' }), 'webhooks[0].secret: set exactly one of secret and secretFile'],
    ['secretFile: empty', hook({ secret: undefined, secretFile: '' }), 'webhooks[0].secretFile: must be a file path'],
    ['timeout: words', hook({ timeout: 'soon' }), 'webhooks[0].timeout: must be a duration such as 5s, from 100ms to 5m'],
    ['timeout: too short', hook({ timeout: '50ms' }), 'webhooks[0].timeout: must be a duration such as 5s, from 100ms to 5m'],
    ['timeout: too long', hook({ timeout: '6m' }), 'webhooks[0].timeout: must be a duration'],
    ['maxAttempts: 0', hook({ maxAttempts: 0 }), 'webhooks[0].maxAttempts: must be a whole number from 1 to 20'],
    ['maxAttempts: 21', hook({ maxAttempts: 21 }), 'webhooks[0].maxAttempts: must be a whole number from 1 to 20'],
    ['maxAttempts: 2.5', hook({ maxAttempts: 2.5 }), 'webhooks[0].maxAttempts: must be a whole number from 1 to 20'],
    ['maxAttempts: text', hook({ maxAttempts: 'six' }), 'webhooks[0].maxAttempts: must be a whole number from 1 to 20'],
    ['unknown key', hook({ secert: 'x' }), 'webhooks[0].secert: unknown setting; known: name, url, secret, secretFile, timeout, maxAttempts'],
  ])('webhook %s', (_what, webhook, line) => {
    const lines = problems({ webhooks: [hook({ name: 'first' }), webhook] }); // the bad one second: its index is named
    expect(lines.some((l) => l.startsWith(line.replace('webhooks[0]', 'webhooks[1]')))).toBe(true);
  });

  it('names the bad index in the list, and every problem at once', () => {
    expect(
      problems({ webhooks: [hook({ name: 'ok' }), hook({ name: 'Bad', url: 'ftp://x', maxAttempts: 0 })] }),
    ).toEqual([
      'webhooks[1].name: must be 1 to 63 lowercase letters, digits and -, starting with a letter or digit',
      'webhooks[1].url: must be an http or https URL',
      'webhooks[1].maxAttempts: must be a whole number from 1 to 20',
    ]);
  });

  it('refuses duplicate webhook names', () => {
    expect(problems({ webhooks: [hook(), hook({ url: 'https://other.example/' })] })).toEqual([
      'webhooks[1].name: duplicate name security (also webhooks[0])',
    ]);
  });

  it('never echoes a secret or a URL in a message', () => {
    const secret = 'tiny-secret';
    const url = 'ftp://token-in-path.example/T000/B000/XXXX';
    const text = problems({ webhooks: [hook({ secret, url })] }).join('\n');
    expect(text).not.toContain(secret);
    expect(text).not.toContain('XXXX');
  });

  it.each<[string, unknown, string]>([
    ['webhooks not a list', { webhooks: { name: 'a' } }, 'webhooks: must be a list of webhooks'],
    ['webhook not a mapping', { webhooks: ['https://h.example/'] }, 'webhooks[0]: must be a mapping with name, url, secret or secretFile, timeout, maxAttempts'],
    ['webhooks bad JSON', { webhooks: '[{"name":' }, 'webhooks: must be JSON'],
    ['routes bad JSON', { notificationRoutes: 'types: *' }, 'notificationRoutes: must be JSON'],
    ['routes not a list', { notificationRoutes: { types: ['*'] } }, 'notificationRoutes: must be a list of routes'],
    ['route not a mapping', { notificationRoutes: ['*'] }, 'notificationRoutes[0]: must be a mapping with types, priorities, channels'],
    ['types missing', { notificationRoutes: [{ channels: ['log'] }] }, 'notificationRoutes[0].types: must be a list of event types'],
    ['types empty', { notificationRoutes: [{ types: [], channels: ['log'] }] }, "notificationRoutes[0].types: must not be empty (use ['*'] for every type)"],
    ['type unknown', { notificationRoutes: [{ types: ['key.revokd'], channels: ['log'] }] }, 'notificationRoutes[0].types[0]: "key.revokd" is not an event type (key.created,'],
    ['type bad wildcard', { notificationRoutes: [{ types: ['*', 'key*'], channels: ['log'] }] }, 'notificationRoutes[0].types[1]: "key*" is not an event type'],
    ['type wildcard of nothing', { notificationRoutes: [{ types: ['kye.*'], channels: ['log'] }] }, 'notificationRoutes[0].types[0]: "kye.*" is not an event type'],
    ['type inner wildcard', { notificationRoutes: [{ types: ['*.revoked'], channels: ['log'] }] }, 'notificationRoutes[0].types[0]: "*.revoked" is not'],
    ['type not a string', { notificationRoutes: [{ types: [3], channels: ['log'] }] }, 'notificationRoutes[0].types[0]: must be a string'],
    ['priority unknown', { notificationRoutes: [{ types: ['*'], priorities: ['urgent'], channels: ['log'] }] }, 'notificationRoutes[0].priorities[0]: "urgent" is not a priority; use critical, high, normal, low'],
    ['priorities not a list', { notificationRoutes: [{ types: ['*'], priorities: 'low', channels: ['log'] }] }, 'notificationRoutes[0].priorities: must be a list of priorities (empty: every priority)'],
    ['channels empty', { notificationRoutes: [{ types: ['*'], channels: [] }] }, 'notificationRoutes[0].channels: must name at least one channel'],
    ['channels missing', { notificationRoutes: [{ types: ['*'] }] }, 'notificationRoutes[0].channels: must be a list of channel names'],
    ['channel empty name', { notificationRoutes: [{ types: ['*'], channels: [''] }] }, 'notificationRoutes[0].channels[0]: must not be empty'],
    ['route unknown key', { notificationRoutes: [{ types: ['*'], channels: ['log'], channel: 'x' }] }, 'notificationRoutes[0].channel: unknown setting; known: types, priorities, channels'],
    ['batch not a mapping', { notificationBatch: 5 }, 'notificationBatch: must be a mapping with maxSize, window'],
    ['batch maxSize 0', { notificationBatch: { maxSize: 0 } }, 'notificationBatch.maxSize: must be a whole number from 1 to 10000'],
    ['batch maxSize huge', { notificationBatch: { maxSize: 10_001 } }, 'notificationBatch.maxSize: must be a whole number from 1 to 10000'],
    ['batch window', { notificationBatch: { window: '2h' } }, 'notificationBatch.window: must be a duration such as 5s, at most 1h'],
    ['batch window negative', { notificationBatch: { window: -1 } }, 'notificationBatch.window: must be a duration'],
    ['batch unknown key', { notificationBatch: { size: 5 } }, 'notificationBatch.size: unknown setting; known: maxSize, window'],
  ])('%s', (_what, raw, line) => {
    const lines = problems(raw);
    expect(lines.some((l) => l.startsWith(line))).toBe(true);
  });

  it('refuses routes naming channels that do not exist, listing the known ones', () => {
    expect(
      problems({
        webhooks: [hook()],
        notificationRoutes: [
          { types: ['*'], channels: ['log', 'pager'] },
          { types: ['key.*'], channels: ['nats', 'security', 'slack'] },
        ],
      }),
    ).toEqual([
      'notificationRoutes[0].channels[1]: unknown channel "pager"; known: log, nats, security',
      'notificationRoutes[1].channels[2]: unknown channel "slack"; known: log, nats, security',
    ]);
  });

  it('names an unreadable or too short secretFile', () => {
    const missing = join(dir, 'missing');
    expect(problems({ webhooks: [hook({ secret: undefined, secretFile: missing })] })[0]).toMatch(
      new RegExp(`^webhooks\\[0\\]\\.secretFile: cannot read ${missing}: .*ENOENT`),
    );
    const short = join(dir, 'short');
    writeFileSync(short, 'tiny\n');
    expect(problems({ webhooks: [hook({ secret: undefined, secretFile: short })] })).toEqual([
      `webhooks[0].secretFile: the secret in ${short} must be at least 16 characters`,
    ]);
  });

  it('refuses a raw value that is not a mapping', () => {
    expect(problems(['webhooks'])).toEqual(['config: must be a mapping of settings']);
    expect(problems('x')).toEqual(['config: must be a mapping of settings']);
  });
});

describe('exported pieces', () => {
  it('schemas parse on their own', () => {
    expect(webhookSchema.parse(hook())).toMatchObject({ timeout: 5_000, maxAttempts: 6 });
    expect(notificationRouteSchema.parse({ types: ['*'], channels: ['log'] })).toEqual({ types: ['*'], priorities: [], channels: ['log'] });
  });

  it('isKnownTypePattern accepts only types, prefixes of types and *', () => {
    for (const ok of ['*', 'key.*', 'key.revoked', 'ratelimit.*', 'policy.violation']) expect(isKnownTypePattern(ok)).toBe(true);
    for (const bad of ['key', 'key.', 'k.*', '.*', '*.*', 'key.**', 'key.revoked.*', 'KEY.*', '']) expect(isKnownTypePattern(bad)).toBe(false);
  });

  it('formatPath writes indexes in brackets and keys with dots', () => {
    expect(formatPath(['webhooks', 1, 'url'])).toBe('webhooks[1].url');
    expect(formatPath(['notificationRoutes', 0, 'types', 2])).toBe('notificationRoutes[0].types[2]');
    expect(formatPath([])).toBe('config');
  });
});
