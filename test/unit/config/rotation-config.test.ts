import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { ConfigError, loadConfig } from '../../../src/config/config';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'keyward-kek-test-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const KEK = randomBytes(32);
const KEK_B64 = KEK.toString('base64');

function error(env: NodeJS.ProcessEnv): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('rotation and scheduler settings', () => {
  it('defaults: no KEK, 24h grace, scheduler on every 1s in batches of 500', () => {
    const c = loadConfig({});
    expect(c.kek).toBeUndefined();
    expect(c).toMatchObject({ rotationGracePeriod: 86_400_000, schedulerEnabled: true, schedulerInterval: 1_000, schedulerBatch: 500 });
  });

  it('reads the settings from the environment', () => {
    const c = loadConfig({ KEYWARD_ROTATION_GRACE_PERIOD: '90m', KEYWARD_SCHEDULER_ENABLED: 'false', KEYWARD_SCHEDULER_INTERVAL: '250ms', KEYWARD_SCHEDULER_BATCH: '50' });
    expect(c).toMatchObject({ rotationGracePeriod: 5_400_000, schedulerEnabled: false, schedulerInterval: 250, schedulerBatch: 50 });
  });

  it.each([
    ['KEYWARD_ROTATION_GRACE_PERIOD', '91d'],
    ['KEYWARD_ROTATION_GRACE_PERIOD', '0s'],
    ['KEYWARD_SCHEDULER_ENABLED', 'maybe'],
    ['KEYWARD_SCHEDULER_INTERVAL', '10ms'],
    ['KEYWARD_SCHEDULER_BATCH', '0'],
    ['KEYWARD_SCHEDULER_BATCH', '20000'],
  ])('refuses %s=%s, naming the variable', (name, value) => {
    expect(error({ [name]: value })).toContain(name);
  });
});

describe('key-encryption key', () => {
  it('KEYWARD_KEK: the base64 of 32 bytes', () => {
    const c = loadConfig({ KEYWARD_KEK: KEK_B64 });
    expect(c.kek!.bytes().equals(KEK)).toBe(true);
  });

  it('KEYWARD_KEK_FILE: a file holding it (trailing newline allowed)', () => {
    const path = join(dir, 'kek');
    writeFileSync(path, `${KEK_B64}\n`);
    expect(loadConfig({ KEYWARD_KEK_FILE: path }).kek!.bytes().equals(KEK)).toBe(true);
  });

  it('both set is an error', () => {
    const path = join(dir, 'kek2');
    writeFileSync(path, KEK_B64);
    expect(error({ KEYWARD_KEK: KEK_B64, KEYWARD_KEK_FILE: path })).toMatch(/KEYWARD_KEK and KEYWARD_KEK_FILE/);
  });

  it.each([
    ['16 bytes', randomBytes(16).toString('base64')],
    ['not base64', 'not a key at all, just words!'],
    ['33 bytes', randomBytes(33).toString('base64')],
  ])('refuses a KEK of %s, without echoing it', (_what, value) => {
    const msg = error({ KEYWARD_KEK: value });
    expect(msg).toContain('KEYWARD_KEK');
    expect(msg).toContain('openssl rand -base64 32');
    expect(msg).not.toContain(value);
  });

  it('a bad KEK file names the variable and the path, not the content', () => {
    const path = join(dir, 'bad');
    const content = randomBytes(20).toString('base64');
    writeFileSync(path, content);
    const msg = error({ KEYWARD_KEK_FILE: path });
    expect(msg).toContain('KEYWARD_KEK_FILE');
    expect(msg).toContain(path);
    expect(msg).not.toContain(content);
    expect(error({ KEYWARD_KEK_FILE: join(dir, 'missing') })).toMatch(/KEYWARD_KEK_FILE: cannot read/);
  });

  it('the KEK never shows when the config is serialised or inspected', () => {
    const c = loadConfig({ KEYWARD_KEK: KEK_B64 });
    expect(JSON.stringify(c)).not.toContain(KEK_B64);
    expect(JSON.stringify(c)).toContain('"kek":"[redacted]"');
    expect(inspect(c, { depth: 5 })).not.toContain(KEK_B64);
    expect(inspect(c, { depth: 5 })).not.toContain(KEK.toString('hex'));
  });
});
