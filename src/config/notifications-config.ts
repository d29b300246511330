import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { EVENT_TYPES, PRIORITIES, type Priority } from '../domain/events';
import { parseDuration } from './duration';

/**
 * Notification settings: webhooks, routes and batching. In the `KEYWARD_CONFIG` file:
 *
 *   webhooks:
 *     - name: security
 *       url: https://hooks.example.com/keyward
 *       secretFile: /var/run/secrets/keyward/security-webhook   # or secret: <16+ characters>
 *       timeout: 5s
 *       maxAttempts: 6
 *   notificationRoutes:
 *     - { types: ['key.revoked', 'key.deleted'], priorities: [], channels: [security, log] }
 *     - { types: ['ratelimit.*'], priorities: [low], channels: [security] }
 *   notificationBatch: { maxSize: 100, window: 5s }
 *
 * or as JSON in `KEYWARD_WEBHOOKS`, `KEYWARD_NOTIFICATION_ROUTES` (and `KEYWARD_NOTIFICATION_BATCH`).
 * Channel names in routes: a webhook's name, `log` (built in: one log line per event) or `nats`
 * (the NATS stream every event reaches anyway; accepted as a no-op). Without routes every event
 * goes to `log`.
 */

/** Setting → environment variable holding its JSON. */
export const NOTIFICATION_ENV_NAMES = {
  webhooks: 'KEYWARD_WEBHOOKS',
  notificationRoutes: 'KEYWARD_NOTIFICATION_ROUTES',
  notificationBatch: 'KEYWARD_NOTIFICATION_BATCH',
} as const;

export const BUILT_IN_CHANNELS = ['log', 'nats'] as const;

export interface WebhookSettings {
  name: string;
  url: string;
  /** The HMAC key: `secret`, or the trimmed content of `secretFile`. */
  secret: string;
  timeoutMs: number;
  maxAttempts: number;
}

export interface RouteSettings {
  types: string[];
  priorities: Priority[];
  channels: string[];
}

export interface NotificationSettings {
  webhooks: WebhookSettings[];
  routes: RouteSettings[];
  batch: { maxSize: number; windowMs: number };
}

export const DEFAULT_ROUTES: readonly RouteSettings[] = [{ types: ['*'], priorities: [], channels: ['log'] }];

/** Carries every problem found, each naming its setting path, e.g. `webhooks[1].url`. */
export class NotificationConfigError extends Error {
  constructor(readonly issues: readonly { path: string; message: string }[]) {
    super(`invalid notification settings:\n  ${issues.map((i) => `${i.path}: ${i.message}`).join('\n  ')}`);
    this.name = 'NotificationConfigError';
  }
}

const NAME = /^[a-z0-9][a-z0-9-]{0,62}$/;
const MIN_SECRET = 16;

const durationMs = (example: string, minMs: number, maxMs: number, range: string) =>
  z.unknown().transform((v, ctx) => {
    const ms = typeof v === 'number' ? v : typeof v === 'string' ? parseDuration(v) : undefined;
    if (ms === undefined || !Number.isFinite(ms) || ms < minMs || ms > maxMs) {
      ctx.addIssue({ code: 'custom', message: `must be a duration such as ${example}, ${range}` });
      return z.NEVER;
    }
    return ms;
  });

const wholeNumber = (min: number, max: number) => {
  const message = `must be a whole number from ${min} to ${max}`;
  return z.number({ error: message }).int({ message }).min(min, { message }).max(max, { message });
};

const str = z.string({ error: 'must be a string' });

export function isWebhookUrl(url: string): boolean {
  if (/\s/.test(url) || !URL.canParse(url)) return false;
  const { protocol, hostname } = new URL(url);
  return (protocol === 'http:' || protocol === 'https:') && hostname !== '';
}

export const webhookSchema = z
  .strictObject(
    {
      name: str.regex(NAME, {
        message: 'must be 1 to 63 lowercase letters, digits and -, starting with a letter or digit',
      }),
      url: str
        .refine(isWebhookUrl, { message: 'must be an http or https URL', abort: true })
        .refine((u) => !hasCredentials(u), {
          message: 'must not contain user:password@ (put a token in the path or query, or rely on the signature)',
        }),
      secret: str.min(MIN_SECRET, { message: `must be at least ${MIN_SECRET} characters` }).optional(),
      secretFile: str.min(1, { message: 'must be a file path' }).optional(),
      timeout: durationMs('5s', 100, 300_000, 'from 100ms to 5m').default(5_000),
      maxAttempts: wholeNumber(1, 20).default(6),
    },
    { error: 'must be a mapping with name, url, secret or secretFile, timeout, maxAttempts' },
  )
  .superRefine((w, ctx) => {
    if ((w.secret === undefined) === (w.secretFile === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['secret'], message: 'set exactly one of secret and secretFile' });
    }
  });

export const webhooksSchema = z
  .array(webhookSchema, { error: 'must be a list of webhooks' })
  .superRefine((list, ctx) => {
    const seen = new Map<string, number>();
    list.forEach((w, i) => {
      if ((BUILT_IN_CHANNELS as readonly string[]).includes(w.name)) {
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `${w.name} is a built-in channel name` });
      }
      const first = seen.get(w.name);
      if (first !== undefined) {
        ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate name ${w.name} (also webhooks[${first}])` });
      } else seen.set(w.name, i);
    });
  });

const TYPE_FORM = `an event type (${EVENT_TYPES.join(', ')}), a prefix ending in .* (e.g. key.*), or *`;

/** `*`, an event type, or a dot-boundary prefix (`key.*`) of at least one event type. */
export function isKnownTypePattern(pattern: string): boolean {
  if (pattern === '*') return true;
  if (pattern.endsWith('.*')) {
    const prefix = pattern.slice(0, -1);
    return prefix.length > 1 && !prefix.includes('*') && EVENT_TYPES.some((t) => t.startsWith(prefix));
  }
  return (EVENT_TYPES as readonly string[]).includes(pattern);
}

export const notificationRouteSchema = z.strictObject(
  {
    types: z
      .array(str.refine(isKnownTypePattern, { error: (iss) => `${JSON.stringify(iss.input)} is not ${TYPE_FORM}` }), {
        error: 'must be a list of event types',
      })
      .min(1, { message: "must not be empty (use ['*'] for every type)" }),
    priorities: z
      .array(
        z.enum(PRIORITIES as [Priority, ...Priority[]], {
          error: (iss) => `${JSON.stringify(iss.input)} is not a priority; use ${PRIORITIES.join(', ')}`,
        }),
        {
          error: 'must be a list of priorities (empty: every priority)',
        },
      )
      .default([]),
    channels: z
      .array(str.min(1, { message: 'must not be empty' }), { error: 'must be a list of channel names' })
      .min(1, { message: 'must name at least one channel' }),
  },
  { error: 'must be a mapping with types, priorities, channels' },
);

export const notificationRoutesSchema = z.array(notificationRouteSchema, { error: 'must be a list of routes' });

export const notificationBatchSchema = z
  .strictObject(
    {
      maxSize: wholeNumber(1, 10_000).default(100),
      window: durationMs('5s', 0, 3_600_000, 'at most 1h').default(5_000),
    },
    { error: 'must be a mapping with maxSize, window' },
  )
  .prefault({});

/** The three settings together, with the check that needs them all: routes name known channels. */
export const notificationSettingsSchema = z
  .object({
    webhooks: webhooksSchema.default([]),
    notificationRoutes: notificationRoutesSchema.optional(),
    notificationBatch: notificationBatchSchema,
  })
  .superRefine((s, ctx) => {
    const known = [...BUILT_IN_CHANNELS, ...s.webhooks.map((w) => w.name)];
    s.notificationRoutes?.forEach((r, i) =>
      r.channels.forEach((c, j) => {
        if (!known.includes(c)) {
          ctx.addIssue({
            code: 'custom',
            path: ['notificationRoutes', i, 'channels', j],
            message: `unknown channel ${JSON.stringify(c)}; known: ${known.join(', ')}`,
          });
        }
      }),
    );
  });

export interface ParseNotificationOptions {
  /** Reads `secretFile`s; default `fs.readFileSync(path, 'utf8')`. */
  readFile?: (path: string) => string;
}

/**
 * Validates the notification settings in `raw` (a config mapping: other keys are ignored; a
 * value may also be a JSON string, as from an environment variable) and reads secret files.
 * Throws a NotificationConfigError listing every problem by setting path.
 */
export function parseNotificationSettings(raw: unknown, opts: ParseNotificationOptions = {}): NotificationSettings {
  const issues: { path: string; message: string }[] = [];
  const input: Record<string, unknown> = {};
  if (raw !== undefined && raw !== null) {
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new NotificationConfigError([{ path: 'config', message: 'must be a mapping of settings' }]);
    for (const key of Object.keys(NOTIFICATION_ENV_NAMES)) {
      const v = (raw as Record<string, unknown>)[key];
      if (typeof v !== 'string') {
        input[key] = v;
        continue;
      }
      try {
        input[key] = JSON.parse(v);
      } catch (err) {
        issues.push({ path: key, message: `must be JSON (${(err as Error).message})` });
      }
    }
  }
  if (issues.length > 0) throw new NotificationConfigError(issues);
  const parsed = notificationSettingsSchema.safeParse(input);
  if (!parsed.success) throw new NotificationConfigError(parsed.error.issues.flatMap(describeIssue));

  const readFile = opts.readFile ?? ((p: string) => readFileSync(p, 'utf8'));
  const webhooks: WebhookSettings[] = [];
  parsed.data.webhooks.forEach((w, i) => {
    let secret = w.secret;
    if (secret === undefined) {
      const path = `webhooks[${i}].secretFile`;
      try {
        secret = readFile(w.secretFile!).trim();
      } catch (err) {
        issues.push({ path, message: `cannot read ${w.secretFile}: ${(err as Error).message}` });
        return;
      }
      if (secret.length < MIN_SECRET) {
        issues.push({ path, message: `the secret in ${w.secretFile} must be at least ${MIN_SECRET} characters` });
        return;
      }
    }
    webhooks.push({ name: w.name, url: w.url, secret, timeoutMs: w.timeout, maxAttempts: w.maxAttempts });
  });
  if (issues.length > 0) throw new NotificationConfigError(issues);

  const routes = parsed.data.notificationRoutes ?? DEFAULT_ROUTES;
  return {
    webhooks,
    routes: routes.map((r) => ({ types: [...r.types], priorities: [...r.priorities], channels: [...r.channels] })),
    batch: { maxSize: parsed.data.notificationBatch.maxSize, windowMs: parsed.data.notificationBatch.window },
  };
}

/** `webhooks[1].url`; the root is `config`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out === '' ? String(p) : `.${String(p)}`;
  return out || 'config';
}

const KNOWN_KEYS: Record<string, readonly string[]> = {
  webhooks: ['name', 'url', 'secret', 'secretFile', 'timeout', 'maxAttempts'],
  notificationRoutes: ['types', 'priorities', 'channels'],
  notificationBatch: ['maxSize', 'window'],
};

function describeIssue(issue: z.core.$ZodIssue): { path: string; message: string }[] {
  if (issue.code === 'unrecognized_keys') {
    const known = KNOWN_KEYS[String(issue.path[0])];
    const message = known ? `unknown setting; known: ${known.join(', ')}` : 'unknown setting';
    return issue.keys.map((k) => ({ path: formatPath([...issue.path, k]), message }));
  }
  return [{ path: formatPath(issue.path), message: issue.message }];
}

function hasCredentials(url: string): boolean {
  const u = new URL(url);
  return u.username !== '' || u.password !== '';
}
