import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { isValidPrefix } from '../domain/key-format';
import { parseDuration } from './duration';
import { NOTIFICATION_ENV_NAMES, NotificationConfigError, parseNotificationSettings, type NotificationSettings } from './notifications-config';
import { MAX_GRACE_PERIOD_MS } from '../domain/rotation';

/**
 * keyward's one configuration object. Sources, later ones winning: defaults, the file named by
 * `KEYWARD_CONFIG` (YAML or JSON, camelCase keys as below), `KEYWARD_*` environment variables.
 * `loadConfig` fails with a `ConfigError` naming the setting and the accepted form.
 */
export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Setting name in the schema → environment variable. */
export const ENV_NAMES = {
  grpcAddr: 'KEYWARD_GRPC_ADDR',
  healthAddr: 'KEYWARD_HEALTH_ADDR',
  metricsAddr: 'KEYWARD_METRICS_ADDR',
  redisUrl: 'KEYWARD_REDIS_URL',
  cacheMaxEntries: 'KEYWARD_CACHE_MAX_ENTRIES',
  cacheTtl: 'KEYWARD_CACHE_TTL',
  cacheNegativeTtl: 'KEYWARD_CACHE_NEGATIVE_TTL',
  cacheMaxStaleness: 'KEYWARD_CACHE_MAX_STALENESS',
  usageFlushInterval: 'KEYWARD_USAGE_FLUSH_INTERVAL',
  natsUrl: 'KEYWARD_NATS_URL',
  eventsMaxAge: 'KEYWARD_EVENTS_MAX_AGE',
  auditRetention: 'KEYWARD_AUDIT_RETENTION',
  auditMaxEntries: 'KEYWARD_AUDIT_MAX_ENTRIES',
  auditValidationThrottle: 'KEYWARD_AUDIT_VALIDATION_THROTTLE',
  adminToken: 'KEYWARD_ADMIN_TOKEN',
  adminTokenFile: 'KEYWARD_ADMIN_TOKEN_FILE',
  devAdminTokenFile: 'KEYWARD_DEV_ADMIN_TOKEN_FILE',
  keyPrefix: 'KEYWARD_KEY_PREFIX',
  logLevel: 'KEYWARD_LOG_LEVEL',
  shutdownTimeout: 'KEYWARD_SHUTDOWN_TIMEOUT',
  kek: 'KEYWARD_KEK',
  kekFile: 'KEYWARD_KEK_FILE',
  rotationGracePeriod: 'KEYWARD_ROTATION_GRACE_PERIOD',
  schedulerEnabled: 'KEYWARD_SCHEDULER_ENABLED',
  schedulerInterval: 'KEYWARD_SCHEDULER_INTERVAL',
  schedulerBatch: 'KEYWARD_SCHEDULER_BATCH',
  http2StreamTable: 'KEYWARD_HTTP2_STREAM_TABLE',
  http2ResponseOptions: 'KEYWARD_HTTP2_RESPONSE_OPTIONS',
  // Structured settings (lists, maps): JSON in the variable, or plain YAML in the config file.
  ...NOTIFICATION_ENV_NAMES,
} as const;
type SettingName = keyof typeof ENV_NAMES;

const MAX_DURATION_MS = 2_147_483_647;
const ADDRESS_FORM = 'host:port (e.g. 127.0.0.1:50051, [::1]:50051, 0.0.0.0:9091) or unix:///absolute/path';
const address = z.string().refine(isListenAddress, { message: `must be ${ADDRESS_FORM}` });
/** A duration setting; timer settings keep the 24-day cap of setTimeout, retention ones do not. */
const duration = (form: string, maxMs: number = MAX_DURATION_MS) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    const ms = typeof v === 'number' ? v : parseDuration(v);
    if (ms === undefined || ms < 0 || ms > maxMs) {
      const bound = maxMs === MAX_DURATION_MS ? ', at most 24d' : '';
      ctx.addIssue({ code: 'custom', message: `must be a duration such as ${form}${bound}` });
      return z.NEVER;
    }
    return ms;
  });
const retention = (form: string) =>
  duration(form, Number.MAX_SAFE_INTEGER).refine((ms) => ms > 0, { message: 'must be more than 0' });

const KEK_FORM = 'the base64 of 32 random bytes (generate one with: openssl rand -base64 32)';

/**
 * The key-encryption key that seals the secrets of automatic rotations. The bytes are kept in a
 * private field: logging or serialising the config shows `[redacted]`, never the key.
 */
export class KeyEncryptionKey {
  readonly #bytes: Buffer;
  constructor(bytes: Buffer) {
    this.#bytes = Buffer.from(bytes);
  }
  bytes(): Buffer {
    return Buffer.from(this.#bytes);
  }
  /** The forms it can be configured in (base64, base64url), for the log redaction list. */
  textForms(): string[] {
    return [this.#bytes.toString('base64'), this.#bytes.toString('base64url')];
  }
  toJSON(): string {
    return '[redacted]';
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return 'KeyEncryptionKey([redacted])';
  }
}

/** Decodes a KEK in its configured form; undefined when it is not base64 of exactly 32 bytes. The message never holds the value. */
export function decodeKek(text: string): KeyEncryptionKey | undefined {
  const t = text.trim();
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) return undefined;
  const bytes = Buffer.from(t, t.includes('-') || t.includes('_') ? 'base64url' : 'base64');
  return bytes.length === 32 ? new KeyEncryptionKey(bytes) : undefined;
}

const flag = z.union([z.boolean(), z.string()]).transform((v, ctx) => {
  if (typeof v === 'boolean') return v;
  const t = v.trim().toLowerCase();
  if (['true', '1', 'yes', 'on'].includes(t)) return true;
  if (['false', '0', 'no', 'off'].includes(t)) return false;
  ctx.addIssue({ code: 'custom', message: 'must be true or false' });
  return z.NEVER;
});

const schema = z.object({
  grpcAddr: address.default('127.0.0.1:50051'),
  healthAddr: address.default('0.0.0.0:9091'),
  metricsAddr: z
    .string()
    .refine((v) => v === 'off' || (isListenAddress(v) && !v.startsWith('unix://')), {
      message: 'must be host:port (e.g. 0.0.0.0:9464, 127.0.0.1:0) or off',
    })
    .default('0.0.0.0:9464'),
  redisUrl: z
    .string()
    .refine((u) => /^rediss?:\/\/[^\s]+$/.test(u) && URL.canParse(u), {
      message: 'must be a redis:// or rediss:// URL, e.g. redis://:password@redis:6379/0',
    })
    .optional(),
  cacheMaxEntries: z.coerce
    .number({ message: 'must be a whole number' })
    .int({ message: 'must be a whole number' })
    .min(0, { message: 'must be 0 (cache off) or more' })
    .default(100_000),
  cacheTtl: duration('10s').default(10_000),
  cacheNegativeTtl: duration('5s').default(5_000),
  cacheMaxStaleness: duration('5m').default(300_000),
  usageFlushInterval: duration('1s').default(1_000).refine((ms) => ms >= 100, { message: 'must be at least 100ms' }),
  natsUrl: z
    .string()
    .refine((v) => v.split(',').every((u) => /^(nats|tls|wss?):\/\/[^\s,]+$/.test(u.trim()) && URL.canParse(u.trim())), {
      message: 'must be a nats:// URL, or several separated by commas for a cluster, e.g. nats://nats-0:4222,nats://nats-1:4222',
    })
    .optional(),
  eventsMaxAge: retention('7d').default(7 * 86_400_000),
  auditRetention: retention('90d').default(90 * 86_400_000),
  auditMaxEntries: z.coerce
    .number({ message: 'must be a whole number' })
    .int({ message: 'must be a whole number' })
    .min(1000, { message: 'must be at least 1000' })
    .default(1_000_000),
  auditValidationThrottle: duration('60s').default(60_000),
  adminToken: z.string().min(32, { message: 'must be at least 32 characters' }).optional(),
  adminTokenFile: z.string().min(1).optional(),
  devAdminTokenFile: z.string().min(1).default(join(homedir(), '.keyward', 'admin-token')),
  keyPrefix: z
    .string()
    .refine(isValidPrefix, { message: 'must be lowercase letters and digits in 1 to 4 _-separated parts, e.g. sk_live' })
    .default('sk'),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info'),
  shutdownTimeout: duration('10s or 500ms').default(10_000),
  kek: z
    .string()
    .transform((v, ctx) => {
      const kek = decodeKek(v);
      if (kek === undefined) {
        ctx.addIssue({ code: 'custom', message: `must be ${KEK_FORM}` });
        return z.NEVER;
      }
      return kek;
    })
    .optional(),
  kekFile: z.string().min(1).optional(),
  rotationGracePeriod: duration('24h or 30m', MAX_GRACE_PERIOD_MS)
    .refine((ms) => ms >= 1_000, { message: 'must be from 1s to 90d' })
    .default(86_400_000),
  schedulerEnabled: flag.default(true),
  schedulerInterval: duration('1s or 500ms').refine((ms) => ms >= 100, { message: 'must be at least 100ms' }).default(1_000),
  schedulerBatch: z.coerce
    .number({ message: 'must be a whole number' })
    .int({ message: 'must be a whole number' })
    .min(1, { message: 'must be from 1 to 10000' })
    .max(10_000, { message: 'must be from 1 to 10000' })
    .default(500),
  // the node:http2 GC workaround (transport/grpc/http2-stream-table.ts); false: Node's own stream Map
  http2StreamTable: flag.default(true),
  // the node:http2 hidden-class workaround (transport/grpc/http2-response-options.ts); false: options left as they are
  http2ResponseOptions: flag.default(true),
});

export type Config = z.infer<typeof schema> & { notifications: NotificationSettings };

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const raw: Record<string, unknown> = {};
  const file = env.KEYWARD_CONFIG;
  if (file) Object.assign(raw, readConfigFile(file));
  for (const [name, envName] of Object.entries(ENV_NAMES)) {
    const v = env[envName];
    if (v !== undefined && v !== '') raw[name] = v;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const key = String(i.path[0] ?? '');
      const env = ENV_NAMES[key as SettingName];
      const label = env ? `${env} (${key})` : key || 'config';
      return `${label}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  let notifications: NotificationSettings;
  try {
    notifications = parseNotificationSettings(raw);
  } catch (err) {
    if (!(err instanceof NotificationConfigError)) throw err;
    const lines = err.issues.map((i) => {
      const setting = i.path.split(/[.[]/)[0];
      const env = ENV_NAMES[setting as SettingName];
      return `${env ? `${env} (${i.path})` : i.path}: ${i.message}`;
    });
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}`);
  }
  const config: Config = { ...parsed.data, notifications };
  if (config.adminToken === undefined && config.adminTokenFile !== undefined) {
    config.adminToken = readTokenFile(config.adminTokenFile);
  }
  if (config.kekFile !== undefined) {
    if (config.kek !== undefined) throw new ConfigError('KEYWARD_KEK and KEYWARD_KEK_FILE are both set: set one of them');
    config.kek = readKekFile(config.kekFile);
  }
  return config;
}

function readConfigFile(path: string): Record<string, unknown> {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`KEYWARD_CONFIG: cannot read ${path}: ${(err as Error).message}`);
  }
  // loaded only for a config file: the parser is ~1 MiB of heap the sidecar would keep for nothing
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const YAML = require('yaml') as typeof import('yaml');
  let data: unknown;
  try {
    data = YAML.parse(text); // YAML is a superset of JSON
  } catch (err) {
    throw new ConfigError(`KEYWARD_CONFIG: ${path} is not valid YAML or JSON: ${(err as Error).message}`);
  }
  if (data === null || data === undefined) return {};
  if (typeof data !== 'object' || Array.isArray(data)) {
    throw new ConfigError(`KEYWARD_CONFIG: ${path} must hold a mapping of settings`);
  }
  const unknown = Object.keys(data).filter((k) => !Object.hasOwn(ENV_NAMES, k));
  if (unknown.length > 0) {
    throw new ConfigError(
      `KEYWARD_CONFIG: unknown setting(s) ${unknown.join(', ')} in ${path}; known: ${Object.keys(ENV_NAMES).join(', ')}`,
    );
  }
  return data as Record<string, unknown>;
}

function readTokenFile(path: string): string {
  let token: string;
  try {
    token = readFileSync(path, 'utf8').trim();
  } catch (err) {
    throw new ConfigError(`KEYWARD_ADMIN_TOKEN_FILE: cannot read ${path}: ${(err as Error).message}`);
  }
  if (token.length < 32) throw new ConfigError(`KEYWARD_ADMIN_TOKEN_FILE: the token in ${path} must be at least 32 characters`);
  return token;
}

function readKekFile(path: string): KeyEncryptionKey {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`KEYWARD_KEK_FILE: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  const kek = decodeKek(text);
  if (kek === undefined) throw new ConfigError(`KEYWARD_KEK_FILE: ${path} must hold ${KEK_FORM}`);
  return kek;
}

export function isListenAddress(addr: string): boolean {
  if (addr.startsWith('unix://')) return addr.startsWith('unix:///') && addr.length > 'unix:///'.length;
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(addr);
  return m !== null && Number(m[2]) <= 65535;
}
