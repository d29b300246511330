import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { KeyState } from '../../src/gen/keyward/v1/api_key.pb';
import {
  CreateKeyRequest,
  ListKeysRequest,
  UpdateKeyRequest,
  type CreateKeyResponse,
} from '../../src/gen/keyward/v1/key_admin_service.pb';
import { ValidateKeyRequest, ValidationCode } from '../../src/gen/keyward/v1/key_service.pb';
import { bearer, call, startKeyward, type KeywardProcess } from '../support/keyward-process';

let kw: KeywardProcess;
beforeAll(async () => {
  kw = await startKeyward();
});
afterAll(async () => {
  expect(await kw.stop()).toBe(0);
});

const create = (req: Partial<CreateKeyRequest>, md = kw.root) =>
  call(kw.admin.createKey.bind(kw.admin), CreateKeyRequest.fromPartial(req), md);
const validate = (req: Partial<ValidateKeyRequest>) =>
  call(kw.keys.validateKey.bind(kw.keys), ValidateKeyRequest.fromPartial(req), bearer('unused'));
const list = (req: Partial<ListKeysRequest>, md = kw.root) =>
  call(kw.admin.listKeys.bind(kw.admin), ListKeysRequest.fromPartial(req), md);

async function expectStatus(p: Promise<unknown>, code: status, detail?: RegExp): Promise<ServiceError> {
  const err = (await p.then(
    () => {
      throw new Error(`expected gRPC status ${status[code]}, got OK`);
    },
    (e: ServiceError) => e,
  )) as ServiceError;
  expect(status[err.code]).toBe(status[code]);
  if (detail) expect(err.details).toMatch(detail);
  return err;
}

describe('key lifecycle over gRPC with the bootstrap token', () => {
  let created: CreateKeyResponse;

  test('create returns the record and the secret once; the secret validates', async () => {
    created = await create({ service: 'orders', owner: 'cust-1', name: 'checkout', scopes: ['orders:*'], metadata: { plan: 'pro' } });
    expect(created.key!.id).toMatch(/^key_[0-9A-Z]{26}$/);
    expect(created.secret).toMatch(/^sk_[0-9A-Za-z]{39}$/);
    expect(created.key!.hint).toBe(created.secret.slice(0, 7));
    expect(JSON.stringify(created.key)).not.toContain(created.secret.slice(3));

    const ok = await validate({ key: created.secret, requiredScopes: ['orders:read'], service: 'orders' });
    expect(ok).toMatchObject({ valid: true, code: ValidationCode.VALIDATION_CODE_VALID, keyId: created.key!.id, owner: 'cust-1' });
    expect(ok.metadata).toEqual({ plan: 'pro' });
  });

  test('get never returns the secret again', async () => {
    const got = await call(kw.admin.getKey.bind(kw.admin), { keyId: created.key!.id }, kw.root);
    expect(got.key).toEqual(created.key);
    expect(JSON.stringify(got)).not.toContain(created.secret.slice(3));
  });

  test('validation outcomes are codes, not errors', async () => {
    const wrongService = await validate({ key: created.secret, service: 'billing' });
    expect(wrongService).toMatchObject({ valid: false, code: ValidationCode.VALIDATION_CODE_NOT_FOUND, keyId: '' });
    const scope = await validate({ key: created.secret, requiredScopes: ['billing:read'] });
    expect(scope).toMatchObject({ code: ValidationCode.VALIDATION_CODE_INSUFFICIENT_SCOPE, reason: 'missing_scope:billing:read' });
    expect((await validate({ key: 'garbage' })).code).toBe(ValidationCode.VALIDATION_CODE_MALFORMED);
    expect((await validate({ key: 'x'.repeat(1_000_000) })).code).toBe(ValidationCode.VALIDATION_CODE_MALFORMED);
    expect((await validate({ key: '' })).code).toBe(ValidationCode.VALIDATION_CODE_MALFORMED);
    // A well-formed key with a valid checksum that was never issued.
    const other = await create({ service: 'orders' });
    await call(kw.admin.deleteKey.bind(kw.admin), { keyId: other.key!.id }, kw.root);
    expect((await validate({ key: other.secret })).code).toBe(ValidationCode.VALIDATION_CODE_NOT_FOUND);
  });

  test('update disables and re-enables, changes scopes and metadata by mask', async () => {
    const id = created.key!.id;
    const update = (req: Partial<UpdateKeyRequest>) =>
      call(kw.admin.updateKey.bind(kw.admin), UpdateKeyRequest.fromPartial({ keyId: id, ...req }), kw.root);
    const disabled = await update({ enabled: false, updateMask: ['enabled'] });
    expect(disabled.key!.state).toBe(KeyState.KEY_STATE_DISABLED);
    expect((await validate({ key: created.secret })).code).toBe(ValidationCode.VALIDATION_CODE_DISABLED);

    const renamed = await update({ enabled: true, name: 'renamed', scopes: ['orders:read'], updateMask: ['enabled', 'name', 'scopes'] });
    expect(renamed.key).toMatchObject({ state: KeyState.KEY_STATE_ACTIVE, name: 'renamed', scopes: ['orders:read'] });
    expect(renamed.key!.metadata).toEqual({ plan: 'pro' }); // not in the mask: unchanged
    expect((await validate({ key: created.secret, requiredScopes: ['orders:write'] })).code).toBe(
      ValidationCode.VALIDATION_CODE_INSUFFICIENT_SCOPE,
    );
    const expiring = await update({ expireTime: new Date(Date.now() + 3_600_000), updateMask: ['expire_time'] });
    expect(expiring.key!.expireTime).toBeDefined();
    const cleared = await update({ updateMask: ['expire_time'] });
    expect(cleared.key!.expireTime).toBeUndefined();
  });

  test('revoke is permanent and idempotent; delete makes the key unknown', async () => {
    const id = created.key!.id;
    const revoked = await call(kw.admin.revokeKey.bind(kw.admin), { keyId: id, reason: 'leaked' }, kw.root);
    expect(revoked.key).toMatchObject({ state: KeyState.KEY_STATE_REVOKED, revokeReason: 'leaked' });
    expect((await validate({ key: created.secret })).code).toBe(ValidationCode.VALIDATION_CODE_REVOKED);
    const again = await call(kw.admin.revokeKey.bind(kw.admin), { keyId: id, reason: 'other' }, kw.root);
    expect(again.key!.revokeReason).toBe('leaked');
    await expectStatus(
      call(kw.admin.updateKey.bind(kw.admin), UpdateKeyRequest.fromPartial({ keyId: id, enabled: true, updateMask: ['enabled'] }), kw.root),
      status.FAILED_PRECONDITION,
      /revoked/,
    );
    await call(kw.admin.deleteKey.bind(kw.admin), { keyId: id }, kw.root);
    await expectStatus(call(kw.admin.getKey.bind(kw.admin), { keyId: id }, kw.root), status.NOT_FOUND);
    expect((await validate({ key: created.secret })).code).toBe(ValidationCode.VALIDATION_CODE_NOT_FOUND);
  });

  test('list pages through every key exactly once, oldest first, stable under inserts', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 25; i++) ids.push((await create({ service: 'paging', owner: i % 2 ? 'odd' : 'even' })).key!.id);
    const seen: string[] = [];
    let pageToken = '';
    let pages = 0;
    do {
      const page = await list({ service: 'paging', pageSize: 10, pageToken });
      seen.push(...page.keys.map((k) => k.id));
      pageToken = page.nextPageToken;
      if (pages++ === 0) ids.push((await create({ service: 'paging', owner: 'late' })).key!.id); // concurrent insert
    } while (pageToken);
    expect(seen).toEqual(ids);

    const odd = await list({ service: 'paging', owner: 'odd', pageSize: 100 });
    expect(odd.keys).toHaveLength(12);
    expect(odd.nextPageToken).toBe('');
    const revokedOnly = await list({ service: 'paging', state: KeyState.KEY_STATE_REVOKED });
    expect(revokedOnly.keys).toHaveLength(0);
    await expectStatus(list({ service: 'paging', owner: 'even', pageToken: (await list({ service: 'paging', pageSize: 1 })).nextPageToken }), status.INVALID_ARGUMENT, /page_token/);
  });
});

describe('admin authentication and tenant isolation', () => {
  let ordersAdmin: string;
  let auditor: string;

  beforeAll(async () => {
    ordersAdmin = (await create({ service: 'keyward-admin', name: 'orders team', scopes: ['service:orders:write'] })).secret;
    auditor = (await create({ service: 'keyward-admin', scopes: ['service:orders:read'] })).secret;
  });

  test('no credential, a bad one, or a tenant key instead of an admin key: UNAUTHENTICATED', async () => {
    await expectStatus(create({ service: 'orders' }, new Metadata()), status.UNAUTHENTICATED);
    await expectStatus(create({ service: 'orders' }, bearer('not-a-valid-token-at-all')), status.UNAUTHENTICATED);
    const tenantKey = (await create({ service: 'orders', scopes: ['admin'] })).secret;
    await expectStatus(create({ service: 'orders' }, bearer(tenantKey)), status.UNAUTHENTICATED);
  });

  test('a per-service admin key manages its service only', async () => {
    const mine = await create({ service: 'orders', name: 'by team' }, bearer(ordersAdmin));
    expect(mine.key!.service).toBe('orders');
    const foreign = await create({ service: 'billing', name: 'other tenant' });

    await expectStatus(create({ service: 'billing' }, bearer(ordersAdmin)), status.PERMISSION_DENIED, /service:billing:write/);
    await expectStatus(list({ service: 'billing' }, bearer(ordersAdmin)), status.PERMISSION_DENIED);
    await expectStatus(list({}, bearer(ordersAdmin)), status.PERMISSION_DENIED);
    // Another tenant's key id is indistinguishable from a missing one.
    await expectStatus(call(kw.admin.getKey.bind(kw.admin), { keyId: foreign.key!.id }, bearer(ordersAdmin)), status.NOT_FOUND);
    await expectStatus(call(kw.admin.revokeKey.bind(kw.admin), { keyId: foreign.key!.id, reason: '' }, bearer(ordersAdmin)), status.NOT_FOUND);
    await expectStatus(call(kw.admin.deleteKey.bind(kw.admin), { keyId: foreign.key!.id }, bearer(ordersAdmin)), status.NOT_FOUND);
    expect((await call(kw.admin.getKey.bind(kw.admin), { keyId: foreign.key!.id }, kw.root)).key!.state).toBe(KeyState.KEY_STATE_ACTIVE);
    // Nor can it mint admin credentials.
    await expectStatus(create({ service: 'keyward-admin', scopes: ['admin'] }, bearer(ordersAdmin)), status.PERMISSION_DENIED);

    const page = await list({ service: 'orders', pageSize: 1000 }, bearer(ordersAdmin));
    expect(page.keys.every((k) => k.service === 'orders')).toBe(true);
    expect(page.keys.map((k) => k.id)).toContain(mine.key!.id);
  });

  test('a read-only admin key can read but not change', async () => {
    const target = await create({ service: 'orders' });
    const got = await call(kw.admin.getKey.bind(kw.admin), { keyId: target.key!.id }, bearer(auditor));
    expect(got.key!.id).toBe(target.key!.id);
    await expectStatus(call(kw.admin.revokeKey.bind(kw.admin), { keyId: target.key!.id, reason: '' }, bearer(auditor)), status.PERMISSION_DENIED);
    await expectStatus(create({ service: 'orders' }, bearer(auditor)), status.PERMISSION_DENIED);
  });

  test('revoking an admin key withdraws its access at once', async () => {
    const temp = await create({ service: 'keyward-admin', scopes: ['service:orders:read'] });
    await list({ service: 'orders' }, bearer(temp.secret));
    await call(kw.admin.revokeKey.bind(kw.admin), { keyId: temp.key!.id, reason: 'rotated out' }, kw.root);
    await expectStatus(list({ service: 'orders' }, bearer(temp.secret)), status.UNAUTHENTICATED, /REVOKED/);
  });
});
