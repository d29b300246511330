import { MemoryKeyStore } from '../../../src/adapters/store/memory-key-store';
import { AdminAuthenticator } from '../../../src/app/admin-authenticator';
import { KeyAdmin } from '../../../src/app/key-admin';
import { KeyValidator } from '../../../src/app/key-validator';
import { StoreValidationSource } from '../../../src/app/store-validation-source';
import { ADMIN_SERVICE, canAccess, isAdmin, rootPrincipal } from '../../../src/domain/admin-access';
import { ManualClock } from '../../../src/domain/clock';
import { UnauthenticatedError } from '../../../src/domain/errors';
import { generateKey } from '../../../src/domain/key-format';
import { KeyIdGenerator } from '../../../src/domain/key-id';

const T0 = 1_700_000_000_000;
const BOOTSTRAP = 'bootstrap-token-0123456789abcdefghijklmnop';

function setup({ bootstrapToken }: { bootstrapToken?: string } = { bootstrapToken: BOOTSTRAP }) {
  const store = new MemoryKeyStore();
  const clock = new ManualClock(T0);
  const admin = new KeyAdmin({ store, clock, ids: new KeyIdGenerator(), defaultPrefix: 'kwa' });
  const validator = new KeyValidator({ source: new StoreValidationSource(store), clock });
  const auth = new AdminAuthenticator({ bootstrapToken, validator });
  const mint = async (service: string, scopes: string[], extra: { expiresAt?: number } = {}) =>
    admin.create(rootPrincipal(), { service, owner: 'ops', name: 'admin key', scopes, metadata: {}, prefix: '', ...extra });
  return { store, clock, admin, validator, auth, mint };
}

async function rejected(p: Promise<unknown>): Promise<UnauthenticatedError> {
  let caught: unknown;
  try {
    await p;
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(UnauthenticatedError);
  expect((caught as UnauthenticatedError).kind).toBe('unauthenticated');
  return caught as UnauthenticatedError;
}

describe('AdminAuthenticator', () => {
  it.each([
    ['missing', undefined],
    ['empty', ''],
    ['no scheme', BOOTSTRAP],
    ['Basic scheme', `Basic ${BOOTSTRAP}`],
    ['scheme only', 'Bearer'],
    ['scheme and spaces', 'Bearer    '],
    ['two credentials', `Bearer ${BOOTSTRAP} extra`],
    ['no space', `Bearer${BOOTSTRAP}`],
    ['leading space', ` Bearer ${BOOTSTRAP}`],
  ])('refuses a %s authorization header', async (_label, header) => {
    const { auth } = setup();
    const err = await rejected(auth.authenticate(header));
    expect(err.message).not.toContain(BOOTSTRAP);
  });

  it('accepts the bootstrap token as root', async () => {
    const { auth } = setup();
    const p = await auth.authenticate(`Bearer ${BOOTSTRAP}`);
    expect(p.actor).toBe('root');
    expect(isAdmin(p)).toBe(true);
  });

  it.each([`bearer ${BOOTSTRAP}`, `BEARER ${BOOTSTRAP}`, `Bearer   ${BOOTSTRAP}`, `Bearer ${BOOTSTRAP}  `, `Bearer\t${BOOTSTRAP}`])(
    'accepts the scheme case-insensitively with surrounding whitespace: %j',
    async (header) => {
      const { auth } = setup();
      expect((await auth.authenticate(header)).actor).toBe('root');
    },
  );

  it.each([
    ['one character changed', `${BOOTSTRAP.slice(0, -1)}X`],
    ['a prefix of it', BOOTSTRAP.slice(0, -1)],
    ['it plus one character', `${BOOTSTRAP}x`],
    ['upper case', BOOTSTRAP.toUpperCase()],
  ])('refuses a wrong token: %s', async (_label, token) => {
    const { auth } = setup();
    await rejected(auth.authenticate(`Bearer ${token}`));
  });

  it('has no root access without a bootstrap token', async () => {
    const { auth } = setup({});
    await rejected(auth.authenticate(`Bearer ${BOOTSTRAP}`));
  });

  it('accepts a key of the admin service with its scopes, acting as its id', async () => {
    const { auth, mint } = setup();
    const { record, secret } = await mint(ADMIN_SERVICE, ['service:orders:write', 'service:billing:read']);
    const p = await auth.authenticate(`Bearer ${secret}`);
    expect(p.actor).toBe(record.id);
    expect(isAdmin(p)).toBe(false);
    expect(canAccess(p, 'orders', 'write')).toBe(true);
    expect(canAccess(p, 'billing', 'read')).toBe(true);
    expect(canAccess(p, 'billing', 'write')).toBe(false);
    expect(canAccess(p, 'payments', 'read')).toBe(false);
  });

  it('accepts an admin key with the admin scope as an admin', async () => {
    const { auth, mint } = setup({});
    const { secret } = await mint(ADMIN_SERVICE, ['admin']);
    expect(isAdmin(await auth.authenticate(`Bearer ${secret}`))).toBe(true);
  });

  it('refuses a revoked admin key', async () => {
    const { auth, mint, admin } = setup();
    const { record, secret } = await mint(ADMIN_SERVICE, ['admin']);
    await admin.revoke(rootPrincipal(), record.id, 'rotated');
    const err = await rejected(auth.authenticate(`Bearer ${secret}`));
    expect(err.message).toContain('REVOKED');
  });

  it('refuses a disabled admin key, and accepts it again once enabled', async () => {
    const { auth, mint, admin } = setup();
    const { record, secret } = await mint(ADMIN_SERVICE, ['admin']);
    const update = (enabled: boolean) =>
      admin.update(rootPrincipal(), { keyId: record.id, updateMask: ['enabled'], name: '', scopes: [], metadata: {}, enabled });
    await update(false);
    const err = await rejected(auth.authenticate(`Bearer ${secret}`));
    expect(err.message).toContain('DISABLED');
    await update(true);
    expect((await auth.authenticate(`Bearer ${secret}`)).actor).toBe(record.id);
  });

  it('refuses an expired admin key', async () => {
    const { auth, mint, clock } = setup();
    const { secret } = await mint(ADMIN_SERVICE, ['admin'], { expiresAt: T0 + 1000 });
    expect((await auth.authenticate(`Bearer ${secret}`)).scopes.grants('admin')).toBe(true);
    clock.set(T0 + 1000);
    await rejected(auth.authenticate(`Bearer ${secret}`));
  });

  it('refuses a deleted admin key', async () => {
    const { auth, mint, admin } = setup();
    const { record, secret } = await mint(ADMIN_SERVICE, ['admin']);
    await admin.delete(rootPrincipal(), record.id);
    const err = await rejected(auth.authenticate(`Bearer ${secret}`));
    expect(err.message).toContain('NOT_FOUND');
  });

  it('refuses a valid key of another service, even one with an admin scope', async () => {
    const { auth, mint, validator } = setup();
    const { secret } = await mint('orders', ['admin', 'service:*']);
    // The key itself is valid for its own service...
    expect((await validator.validate({ key: secret, service: 'orders', requiredScopes: [], clientIp: '', cost: 1 })).code).toBe('VALID');
    // ...but it is not an admin credential.
    const err = await rejected(auth.authenticate(`Bearer ${secret}`));
    expect(err.message).toContain('NOT_FOUND');
  });

  it('refuses malformed and unknown keys', async () => {
    const { auth, mint } = setup();
    const { secret } = await mint(ADMIN_SERVICE, ['admin']);
    const tampered = `${secret.slice(0, -1)}${secret.endsWith('0') ? '1' : '0'}`;
    expect((await rejected(auth.authenticate(`Bearer ${tampered}`))).message).toContain('MALFORMED');
    expect((await rejected(auth.authenticate('Bearer kwa_notakey'))).message).toContain('MALFORMED');
    const unknown = generateKey('kwa');
    expect((await rejected(auth.authenticate(`Bearer ${unknown}`))).message).toContain('NOT_FOUND');
  });

  it('never puts the presented credential in the error message', async () => {
    const { auth } = setup();
    const credential = 'kwa_0123456789abcdefghijklmnopqrstuvwxyzABCD';
    const err = await rejected(auth.authenticate(`Bearer ${credential}`));
    expect(err.message).not.toContain(credential);
  });
});
