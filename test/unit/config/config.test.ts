import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, ENV_NAMES, isListenAddress, loadConfig } from '../../../src/config/config';

let dir: string;
let fileCount = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyward-config-test-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const path = join(dir, `${fileCount++}-${name}`);
  writeFileSync(path, text);
  return path;
}

function configError(env: NodeJS.ProcessEnv): ConfigError {
  let caught: unknown;
  try {
    loadConfig(env);
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(ConfigError);
  expect((caught as Error).name).toBe('ConfigError');
  return caught as ConfigError;
}

const TOKEN = 't'.repeat(32);

describe('loadConfig defaults', () => {
  it('applies the defaults with an empty environment', () => {
    expect(loadConfig({})).toMatchObject({
      grpcAddr: '127.0.0.1:50051',
      healthAddr: '0.0.0.0:9091',
      devAdminTokenFile: join(homedir(), '.keyward', 'admin-token'),
      keyPrefix: 'sk',
      logLevel: 'info',
      shutdownTimeout: 10_000,
    });
  });

  it('has no admin token unless configured', () => {
    const c = loadConfig({});
    expect(c.adminToken).toBeUndefined();
    expect(c.adminTokenFile).toBeUndefined();
  });

  it('reads only the environment it is given (process.env by default)', () => {
    const saved = Object.entries(process.env).filter(([k]) => k.startsWith('KEYWARD_'));
    for (const [k] of saved) delete process.env[k];
    process.env.KEYWARD_LOG_LEVEL = 'debug';
    try {
      expect(loadConfig({}).logLevel).toBe('info');
      expect(loadConfig().logLevel).toBe('debug');
    } finally {
      delete process.env.KEYWARD_LOG_LEVEL;
      for (const [k, v] of saved) process.env[k] = v;
    }
  });

  it('treats empty environment values as unset', () => {
    const env = Object.fromEntries(Object.values(ENV_NAMES).map((name) => [name, '']));
    expect(loadConfig({ ...env, KEYWARD_CONFIG: '' })).toEqual(loadConfig({}));
  });

  it('ignores unrelated environment variables', () => {
    expect(loadConfig({ PATH: '/bin', KEYWARD_UNKNOWN: 'x', HOME: '/nowhere' })).toEqual(loadConfig({}));
  });
});

describe('loadConfig from the environment', () => {
  it('maps each variable to its setting', () => {
    const c = loadConfig({
      KEYWARD_GRPC_ADDR: '[::1]:6000',
      KEYWARD_HEALTH_ADDR: 'unix:///run/keyward/health.sock',
      KEYWARD_ADMIN_TOKEN: TOKEN,
      KEYWARD_DEV_ADMIN_TOKEN_FILE: '/tmp/dev-token',
      KEYWARD_KEY_PREFIX: 'pk_test',
      KEYWARD_LOG_LEVEL: 'warn',
      KEYWARD_SHUTDOWN_TIMEOUT: '500ms',
    });
    expect(c).toMatchObject({
      grpcAddr: '[::1]:6000',
      healthAddr: 'unix:///run/keyward/health.sock',
      adminToken: TOKEN,
      devAdminTokenFile: '/tmp/dev-token',
      keyPrefix: 'pk_test',
      logLevel: 'warn',
      shutdownTimeout: 500,
    });
  });

  it.each(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'])('accepts log level %s', (level) => {
    expect(loadConfig({ KEYWARD_LOG_LEVEL: level }).logLevel).toBe(level);
  });

  it.each([
    ['10s', 10_000],
    ['2', 2],
    ['0', 0],
    ['1m', 60_000],
  ])('parses KEYWARD_SHUTDOWN_TIMEOUT=%s as %d ms', (text, ms) => {
    expect(loadConfig({ KEYWARD_SHUTDOWN_TIMEOUT: text }).shutdownTimeout).toBe(ms);
  });

  it('accepts an admin token of exactly 32 characters', () => {
    expect(loadConfig({ KEYWARD_ADMIN_TOKEN: TOKEN }).adminToken).toBe(TOKEN);
  });

  it.each([
    ['KEYWARD_GRPC_ADDR', 'grpcAddr', 'localhost'],
    ['KEYWARD_GRPC_ADDR', 'grpcAddr', '127.0.0.1:65536'],
    ['KEYWARD_GRPC_ADDR', 'grpcAddr', ':50051'],
    ['KEYWARD_GRPC_ADDR', 'grpcAddr', 'host:port'],
    ['KEYWARD_GRPC_ADDR', 'grpcAddr', 'unix://relative.sock'],
    ['KEYWARD_GRPC_ADDR', 'grpcAddr', 'unix:///'],
    ['KEYWARD_GRPC_ADDR', 'grpcAddr', 'http://127.0.0.1:50051'],
    ['KEYWARD_HEALTH_ADDR', 'healthAddr', '0.0.0.0'],
    ['KEYWARD_HEALTH_ADDR', 'healthAddr', '::1:9091'],
    ['KEYWARD_ADMIN_TOKEN', 'adminToken', 't'.repeat(31)],
    ['KEYWARD_KEY_PREFIX', 'keyPrefix', 'SK'],
    ['KEYWARD_KEY_PREFIX', 'keyPrefix', 'sk-live'],
    ['KEYWARD_KEY_PREFIX', 'keyPrefix', 'a'.repeat(33)],
    ['KEYWARD_LOG_LEVEL', 'logLevel', 'verbose'],
    ['KEYWARD_LOG_LEVEL', 'logLevel', 'INFO'],
    ['KEYWARD_SHUTDOWN_TIMEOUT', 'shutdownTimeout', '10 seconds'],
    ['KEYWARD_SHUTDOWN_TIMEOUT', 'shutdownTimeout', '-5s'],
    ['KEYWARD_SHUTDOWN_TIMEOUT', 'shutdownTimeout', '25d'],
    ['KEYWARD_SHUTDOWN_TIMEOUT', 'shutdownTimeout', '9'.repeat(400)],
    ['KEYWARD_REDIS_URL', 'redisUrl', 'http://127.0.0.1:6379'],
    ['KEYWARD_REDIS_URL', 'redisUrl', '127.0.0.1:6379'],
    ['KEYWARD_CACHE_MAX_ENTRIES', 'cacheMaxEntries', '-1'],
    ['KEYWARD_CACHE_MAX_ENTRIES', 'cacheMaxEntries', '1.5'],
    ['KEYWARD_CACHE_TTL', 'cacheTtl', 'forever'],
    ['KEYWARD_USAGE_FLUSH_INTERVAL', 'usageFlushInterval', '10ms'],
  ])('%s=%j is a ConfigError naming the variable', (envName, setting, value) => {
    const err = configError({ [envName]: value });
    expect(err.message).toContain(`${envName} (${setting})`);
    // Only the bad setting is reported.
    for (const other of Object.values(ENV_NAMES)) {
      if (other !== envName && !envName.startsWith(other) && !other.startsWith(envName)) {
        expect(err.message).not.toContain(other);
      }
    }
  });

  it('reports every bad setting at once', () => {
    const err = configError({ KEYWARD_GRPC_ADDR: 'nope', KEYWARD_LOG_LEVEL: 'loud' });
    expect(err.message).toContain('KEYWARD_GRPC_ADDR (grpcAddr)');
    expect(err.message).toContain('KEYWARD_LOG_LEVEL (logLevel)');
  });

  it('never echoes the admin token value in an error', () => {
    const secret = 'short-secret-value';
    const err = configError({ KEYWARD_ADMIN_TOKEN: secret });
    expect(err.message).not.toContain(secret);
  });
});

describe('loadConfig with KEYWARD_CONFIG', () => {
  it('reads a YAML file', () => {
    const path = file('c.yaml', 'grpcAddr: 127.0.0.1:7000\nlogLevel: debug\nshutdownTimeout: 3s\nkeyPrefix: sk_live\n');
    const c = loadConfig({ KEYWARD_CONFIG: path });
    expect(c.grpcAddr).toBe('127.0.0.1:7000');
    expect(c.logLevel).toBe('debug');
    expect(c.shutdownTimeout).toBe(3000);
    expect(c.keyPrefix).toBe('sk_live');
    expect(c.healthAddr).toBe('0.0.0.0:9091');
  });

  it('reads a JSON file, with a duration as a number of milliseconds', () => {
    const path = file('c.json', JSON.stringify({ healthAddr: '127.0.0.1:9999', shutdownTimeout: 2500, adminToken: TOKEN }));
    const c = loadConfig({ KEYWARD_CONFIG: path });
    expect(c.healthAddr).toBe('127.0.0.1:9999');
    expect(c.shutdownTimeout).toBe(2500);
    expect(c.adminToken).toBe(TOKEN);
  });

  it('lets environment variables override the file', () => {
    const path = file('c.yaml', 'logLevel: debug\ngrpcAddr: 127.0.0.1:7000\n');
    const c = loadConfig({ KEYWARD_CONFIG: path, KEYWARD_LOG_LEVEL: 'error' });
    expect(c.logLevel).toBe('error');
    expect(c.grpcAddr).toBe('127.0.0.1:7000');
  });

  it('uses defaults for an empty file', () => {
    expect(loadConfig({ KEYWARD_CONFIG: file('empty.yaml', '') })).toEqual(loadConfig({}));
    expect(loadConfig({ KEYWARD_CONFIG: file('comment.yaml', '# nothing\n') })).toEqual(loadConfig({}));
  });

  it.each([
    ['a misspelt setting', 'grpcAddress: 127.0.0.1:1\n', 'grpcAddress'],
    ['an environment variable name', 'KEYWARD_GRPC_ADDR: 127.0.0.1:1\n', 'KEYWARD_GRPC_ADDR'],
    ['constructor', 'constructor: x\n', 'constructor'],
    ['toString', 'toString: x\n', 'toString'],
    ['hasOwnProperty', 'hasOwnProperty: x\n', 'hasOwnProperty'],
    ['__proto__', '__proto__:\n  logLevel: debug\n', '__proto__'],
  ])('rejects %s as an unknown setting', (_label, text, key) => {
    const path = file('unknown.yaml', text);
    const err = configError({ KEYWARD_CONFIG: path });
    expect(err.message).toContain('KEYWARD_CONFIG');
    expect(err.message).toContain(`unknown setting(s) ${key}`);
  });

  it('rejects unknown keys in JSON too', () => {
    const err = configError({ KEYWARD_CONFIG: file('u.json', '{"logLevel":"info","colour":"blue"}') });
    expect(err.message).toContain('colour');
  });

  it('names the environment variable of a bad value in the file', () => {
    const err = configError({ KEYWARD_CONFIG: file('bad.yaml', 'grpcAddr: nowhere\n') });
    expect(err.message).toContain('KEYWARD_GRPC_ADDR (grpcAddr)');
  });

  it.each([
    ['a negative duration', 'shutdownTimeout: -1\n'],
    ['a duration of the wrong type', 'shutdownTimeout: [1, 2]\n'],
    ['an address of the wrong type', 'grpcAddr: 50051\n'],
    ['a boolean log level', 'logLevel: true\n'],
  ])('rejects %s in the file', (_label, text) => {
    const err = configError({ KEYWARD_CONFIG: file('bad.yaml', text) });
    expect(err.message).toMatch(/KEYWARD_[A-Z_]+ \([a-zA-Z]+\)/);
  });

  it.each([
    ['a list', '- a\n- b\n'],
    ['a scalar', 'hello\n'],
    ['a number', '42\n'],
  ])('rejects a file holding %s', (_label, text) => {
    const err = configError({ KEYWARD_CONFIG: file('shape.yaml', text) });
    expect(err.message).toContain('KEYWARD_CONFIG');
    expect(err.message).toContain('mapping');
  });

  it('rejects invalid YAML', () => {
    const err = configError({ KEYWARD_CONFIG: file('broken.yaml', 'grpcAddr: [unclosed\n') });
    expect(err.message).toContain('KEYWARD_CONFIG');
    expect(err.message).toContain('not valid YAML or JSON');
  });

  it('rejects a missing file', () => {
    const path = join(dir, 'does-not-exist.yaml');
    const err = configError({ KEYWARD_CONFIG: path });
    expect(err.message).toContain('KEYWARD_CONFIG');
    expect(err.message).toContain(path);
  });
});

describe('KEYWARD_ADMIN_TOKEN_FILE', () => {
  it('reads the token, trimming surrounding whitespace', () => {
    const path = file('token', `  ${TOKEN}x\n\n`);
    const c = loadConfig({ KEYWARD_ADMIN_TOKEN_FILE: path });
    expect(c.adminToken).toBe(`${TOKEN}x`);
    expect(c.adminTokenFile).toBe(path);
  });

  it('can be named in the config file', () => {
    const tokenPath = file('token', TOKEN);
    const c = loadConfig({ KEYWARD_CONFIG: file('c.json', JSON.stringify({ adminTokenFile: tokenPath })) });
    expect(c.adminToken).toBe(TOKEN);
  });

  it('requires at least 32 characters after trimming', () => {
    const err = configError({ KEYWARD_ADMIN_TOKEN_FILE: file('short', `${'t'.repeat(31)}\n   `) });
    expect(err.message).toContain('KEYWARD_ADMIN_TOKEN_FILE');
    expect(err.message).toContain('32');
    expect(err.message).not.toContain('t'.repeat(31));
    configError({ KEYWARD_ADMIN_TOKEN_FILE: file('blank', ' '.repeat(40)) });
  });

  it('fails clearly when the file cannot be read', () => {
    const path = join(dir, 'missing-token');
    const err = configError({ KEYWARD_ADMIN_TOKEN_FILE: path });
    expect(err.message).toContain('KEYWARD_ADMIN_TOKEN_FILE');
    expect(err.message).toContain(path);
  });

  it('is not read when KEYWARD_ADMIN_TOKEN is set', () => {
    const c = loadConfig({ KEYWARD_ADMIN_TOKEN: TOKEN, KEYWARD_ADMIN_TOKEN_FILE: join(dir, 'missing-token') });
    expect(c.adminToken).toBe(TOKEN);
  });
});

describe('isListenAddress', () => {
  it.each([
    '127.0.0.1:50051',
    '0.0.0.0:9091',
    'localhost:1',
    'my-host.example.com:443',
    '[::1]:50051',
    '[::]:0',
    '[2001:db8::1]:65535',
    'unix:///tmp/keyward.sock',
    'unix:///a',
  ])('accepts %s', (addr) => {
    expect(isListenAddress(addr)).toBe(true);
  });

  it.each([
    '',
    '127.0.0.1',
    '127.0.0.1:',
    '127.0.0.1:65536',
    '127.0.0.1:123456',
    ':50051',
    '::1:50051',
    '[::1]',
    'host:port',
    'host:-1',
    'unix://',
    'unix:///',
    'unix://relative',
    'http://127.0.0.1:80',
    '127.0.0.1:80 ',
    ' 127.0.0.1:80',
    'a b:80',
  ])('rejects %j', (addr) => {
    expect(isListenAddress(addr)).toBe(false);
  });
});
