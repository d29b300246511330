import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { ADMIN_TOKEN, BIN, startKeyward, type KeywardProcess } from '../support/keyward-process';

const run = promisify(execFile);
let kw: KeywardProcess;

beforeAll(async () => {
  kw = await startKeyward();
});
afterAll(async () => {
  await kw.stop();
});

function cli(args: string[], env: Record<string, string> = {}, input?: string) {
  const child = run(process.execPath, [BIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: '/nonexistent', KEYWARD_ADDR: kw.grpcAddr, KEYWARD_ADMIN_TOKEN: ADMIN_TOKEN, ...env },
  });
  if (input !== undefined) {
    child.child.stdin!.end(input);
  }
  return child;
}

test('keys rotate prints the successor secret once; validate shows the old key superseded; claim refuses a manual rotation', async () => {
  const created = JSON.parse((await cli(['keys', 'create', '-s', 'rotshop', '-n', 'rotating', '--json'])).stdout);
  const oldId: string = created.key.id;

  const rotated = JSON.parse((await cli(['keys', 'rotate', oldId, '--grace', '1h', '--json'])).stdout);
  expect(rotated.secret).toMatch(/^sk_/);
  expect(rotated.secret).not.toBe(created.secret);
  expect(rotated.key.rotatedToKeyId).toBe(rotated.successor.id);
  expect(rotated.successor.rotatedFromKeyId).toBe(oldId);

  const oldAnswer = (await cli(['validate'], {}, created.secret)).stdout.trim();
  expect(oldAnswer).toMatch(new RegExp(`^VALID ${oldId}; superseded by ${rotated.successor.id} until \\d{4}-`));
  expect((await cli(['validate'], {}, rotated.secret)).stdout.trim()).toBe(`VALID ${rotated.successor.id}`);

  // a second rotation of the superseded key is refused, naming the successor
  const again = await cli(['keys', 'rotate', oldId]).catch((e) => e);
  expect(again.stderr).toMatch(new RegExp(`FAILED_PRECONDITION.*already rotated; its successor is ${rotated.successor.id}`));
  // a manual rotation returned its secret at once: nothing is sealed to claim
  const claim = await cli(['keys', 'claim', rotated.successor.id]).catch((e) => e);
  expect(claim.stderr).toMatch(/FAILED_PRECONDITION/);

  const human = (await cli(['keys', 'rotate', rotated.successor.id, '--grace', '0s'])).stdout;
  expect(human).toMatch(/secret\s+sk_/);
  expect(human).toMatch(new RegExp(`replaces ${rotated.successor.id}, which no longer validates`));
  const retired = await cli(['validate'], {}, rotated.secret).catch((e) => e);
  expect(retired.stdout.trim()).toMatch(/^ROTATED/); // not valid: a non-zero exit, the code on stdout
});

test('keys create | get | list | update | revoke | delete, human and --json', async () => {
  const created = JSON.parse((await cli(['keys', 'create', '-s', 'shop', '-o', 'cust-9', '-n', 'web', '--scope', 'shop:*', '-m', 'tier=gold', '--expires', '30d', '--json'])).stdout);
  expect(created.secret).toMatch(/^sk_/);
  const id: string = created.key.id;

  const human = await cli(['keys', 'create', '-s', 'shop', '--prefix', 'sk_test']);
  expect(human.stdout).toMatch(/secret\s+sk_test_[0-9A-Za-z]{39}/);
  expect(human.stdout).toContain('will not show it again');

  const got = (await cli(['keys', 'get', id])).stdout;
  expect(got).toMatch(new RegExp(`id\\s+${id}`));
  expect(got).toMatch(/metadata\s+tier=gold/);
  expect(got).not.toContain(created.secret);

  const listed = (await cli(['keys', 'list', '-s', 'shop'])).stdout;
  expect(listed.split('\n')[0]).toMatch(/^ID\s+SERVICE\s+OWNER/);
  expect(listed).toContain(id);
  const paged = JSON.parse((await cli(['keys', 'list', '-s', 'shop', '--page-size', '1', '--json'])).stdout);
  expect(paged.keys).toHaveLength(1);
  expect(paged.nextPageToken).toBeTruthy();
  const all = JSON.parse((await cli(['keys', 'list', '-s', 'shop', '--page-size', '1', '--all', '--json'])).stdout);
  expect(all.keys).toHaveLength(2);

  const updated = (await cli(['keys', 'update', id, '--disable', '--name', 'renamed', '--no-expiry'])).stdout;
  expect(updated).toMatch(/state\s+disabled/);
  expect(updated).toMatch(/name\s+renamed/);
  expect(updated).toMatch(/expires\s+-/);

  const validated = await cli(['validate', '--json'], {}, created.secret).catch((e) => e);
  expect(validated.code).toBe(3); // not valid: disabled
  expect(JSON.parse(validated.stdout).code).toBe('VALIDATION_CODE_DISABLED');

  expect((await cli(['keys', 'revoke', id, '-r', 'compromised'])).stdout).toMatch(/revoked\s+\S+ compromised/);
  expect((await cli(['keys', 'delete', id])).stdout.trim()).toBe(`deleted ${id}`);
});

test('errors: gRPC status named on stderr, exit code non-zero', async () => {
  const noToken = await cli(['keys', 'list', '-s', 'shop'], { KEYWARD_ADMIN_TOKEN: '' }).catch((e) => e);
  expect(noToken.code).toBe(2);
  expect(noToken.stderr).toContain('no admin credential');
  const badToken = await cli(['keys', 'list', '-s', 'shop', '--token', 'wrong']).catch((e) => e);
  expect(badToken.code).toBe(1);
  expect(badToken.stderr).toMatch(/^keyward: UNAUTHENTICATED: /);
  const bad = await cli(['keys', 'create', '-s', 'Bad Service']).catch((e) => e);
  expect(bad.stderr).toMatch(/INVALID_ARGUMENT: service: must match/);
  const notANumber = await cli(['keys', 'create', '-s', 'shop', '--credits', '1.5']).catch((e) => e);
  expect(notANumber.stderr).toMatch(/option '--credits <n>' argument '1.5' is invalid\. expected a whole number/);
  const nothing = await cli(['keys', 'update', 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A']).catch((e) => e);
  expect(nothing.code).toBe(2);
  expect(nothing.stderr).toContain('nothing to update');
});

test('--help documents every subcommand', async () => {
  const help = (await cli(['keys', '--help'])).stdout;
  for (const sub of ['create', 'get', 'list', 'update', 'revoke', 'delete']) expect(help).toContain(sub);
  expect((await cli(['--help'])).stdout).toMatch(/serve[\s\S]*keys[\s\S]*validate/);
});
