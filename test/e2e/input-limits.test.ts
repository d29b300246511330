import { status, type ServiceError } from '@grpc/grpc-js';
import {
  CreateKeyRequest,
  ListKeysRequest,
  UpdateKeyRequest,
} from '../../src/gen/keyward/v1/key_admin_service.pb';
import { KeyState } from '../../src/gen/keyward/v1/api_key.pb';
import { BatchValidateKeysRequest, ValidateKeyRequest, ValidationCode } from '../../src/gen/keyward/v1/key_service.pb';
import { call, startKeyward, type KeywardProcess } from '../support/keyward-process';

/**
 * Every limit, sent over the wire: the answer is INVALID_ARGUMENT naming the field (in the
 * message and in the `keyward-field` trailer), and nothing is written.
 */
let kw: KeywardProcess;
let existingId: string;

beforeAll(async () => {
  kw = await startKeyward();
  existingId = (await call(kw.admin.createKey.bind(kw.admin), CreateKeyRequest.fromPartial({ service: 'orders', name: 'before', scopes: ['a'], metadata: { k: 'v' } }), kw.root)).key!.id;
});
afterAll(async () => {
  await kw.stop();
});

async function snapshot(): Promise<string> {
  const page = await call(kw.admin.listKeys.bind(kw.admin), ListKeysRequest.fromPartial({ pageSize: 1000 }), kw.root);
  return JSON.stringify(page.keys);
}

async function expectInvalid(p: Promise<unknown>, field: string): Promise<void> {
  const err = await p.then(
    () => {
      throw new Error(`expected INVALID_ARGUMENT for ${field}, got OK`);
    },
    (e: ServiceError) => e,
  );
  expect(status[err.code]).toBe('INVALID_ARGUMENT');
  expect(err.details.startsWith(`${field}: `)).toBe(true);
  expect(err.metadata.get('keyward-field')).toEqual([field]);
}

const long = (n: number) => 'x'.repeat(n);
const many = <T>(n: number, f: (i: number) => T): T[] => Array.from({ length: n }, (_, i) => f(i));

const badCreates: [string, Partial<CreateKeyRequest>][] = [
  ['service', { service: '' }],
  ['service', { service: 'Orders' }],
  ['service', { service: '-orders' }],
  ['service', { service: long(64) }],
  ['owner', { owner: long(129) }],
  ['owner', { owner: 'a\nb' }],
  ['name', { name: long(129) }],
  ['scopes', { scopes: many(65, (i) => `s${i}`) }],
  ['scopes[1]', { scopes: ['ok', 'has space'] }],
  ['scopes[0]', { scopes: [long(129)] }],
  ['scopes[0]', { scopes: ['a*b'] }],
  ['metadata', { metadata: Object.fromEntries(many(33, (i): [string, string] => [`k${i}`, "v"])) }],
  ['metadata', { metadata: { [long(65)]: 'v' } }],
  ['metadata["k"]', { metadata: { k: long(513) } }],
  ['metadata', { metadata: Object.fromEntries(many(10, (i): [string, string] => [`k${i}`, long(500)])) }],
  ['prefix', { prefix: 'SK' }],
  ['prefix', { prefix: 'sk_' }],
  ['prefix', { prefix: long(33) }],
  ['expire_time', { expireTime: new Date(Date.now() - 1000) }],
  ['expire_time', { notBeforeTime: new Date(Date.now() + 7_200_000), expireTime: new Date(Date.now() + 3_600_000) }],
];

describe('CreateKey limits', () => {
  test.each(badCreates)('%s', async (field, req) => {
    const before = await snapshot();
    await expectInvalid(call(kw.admin.createKey.bind(kw.admin), CreateKeyRequest.fromPartial({ service: 'orders', ...req }), kw.root), field);
    expect(await snapshot()).toBe(before);
  });

  test('limits are inclusive: values at the limit are accepted', async () => {
    const res = await call(kw.admin.createKey.bind(kw.admin), CreateKeyRequest.fromPartial({
      service: `a${long(62)}`,
      owner: long(128),
      name: long(128),
      scopes: many(64, (i) => `${'s'.repeat(120)}:${i}`.slice(0, 128)),
      metadata: Object.fromEntries(many(32, (i): [string, string] => [`k${i}`, long(100)])),
    }), kw.root);
    expect(res.key!.scopes).toHaveLength(64);
  });
});

describe('UpdateKey, RevokeKey, GetKey, DeleteKey, ListKeys limits', () => {
  const badUpdates: [string, Partial<UpdateKeyRequest>][] = [
    ['update_mask', { updateMask: [] }],
    ['update_mask', { updateMask: ['owner'] }],
    ['name', { name: long(129), updateMask: ['name'] }],
    ['scopes[0]', { scopes: ['bad scope'], updateMask: ['scopes'] }],
    ['metadata', { metadata: { '': 'v' }, updateMask: ['metadata'] }],
    ['expire_time', { expireTime: new Date(0), updateMask: ['expire_time'] }],
  ];
  test.each(badUpdates)('UpdateKey %s', async (field, req) => {
    const before = await snapshot();
    await expectInvalid(call(kw.admin.updateKey.bind(kw.admin), UpdateKeyRequest.fromPartial({ keyId: existingId, ...req }), kw.root), field);
    expect(await snapshot()).toBe(before);
  });

  test('a valid field next to an invalid one is not applied either', async () => {
    const before = await snapshot();
    await expectInvalid(
      call(kw.admin.updateKey.bind(kw.admin), UpdateKeyRequest.fromPartial({ keyId: existingId, name: 'new', scopes: ['bad scope'], updateMask: ['name', 'scopes'] }), kw.root),
      'scopes[0]',
    );
    expect(await snapshot()).toBe(before);
  });

  test('key_id must be a key id', async () => {
    for (const keyId of ['', 'key_1', 'nope', long(600)]) {
      await expectInvalid(call(kw.admin.getKey.bind(kw.admin), { keyId }, kw.root), 'key_id');
      await expectInvalid(call(kw.admin.deleteKey.bind(kw.admin), { keyId }, kw.root), 'key_id');
      await expectInvalid(call(kw.admin.revokeKey.bind(kw.admin), { keyId, reason: '' }, kw.root), 'key_id');
    }
  });

  test('revoke reason length', async () => {
    const before = await snapshot();
    await expectInvalid(call(kw.admin.revokeKey.bind(kw.admin), { keyId: existingId, reason: long(257) }, kw.root), 'reason');
    expect(await snapshot()).toBe(before);
  });

  test('list: page size, page token, service, state', async () => {
    const list = (req: Partial<ListKeysRequest>) => call(kw.admin.listKeys.bind(kw.admin), ListKeysRequest.fromPartial(req), kw.root);
    await expectInvalid(list({ service: 'orders', pageSize: 1001 }), 'page_size');
    await expectInvalid(list({ service: 'orders', pageSize: -1 }), 'page_size');
    await expectInvalid(list({ service: 'orders', pageToken: 'garbage' }), 'page_token');
    await expectInvalid(list({ service: 'orders', pageToken: long(600) }), 'page_token');
    await expectInvalid(list({ service: 'Bad!' }), 'service');
    await expectInvalid(list({ service: "orders", state: 99 as KeyState }), 'state');
    expect((await list({ service: 'orders', pageSize: 1000 })).keys.length).toBeGreaterThan(0);
  });
});

describe('ValidateKey never fails on the key itself', () => {
  const validate = (req: Partial<ValidateKeyRequest>) =>
    call(kw.keys.validateKey.bind(kw.keys), ValidateKeyRequest.fromPartial(req), kw.root);

  test.each([
    ['empty', ''],
    ['unicode', '🔑'.repeat(100)],
    ['control characters', '\u0000\u0001sk_abc'],
    ['at the length limit', `sk_${'A'.repeat(509)}`],
    ['over the length limit', 'A'.repeat(513)],
    ['huge (3 MB)', 'k'.repeat(3_000_000)],
    ['right shape, bad checksum', `sk_${'A'.repeat(33)}000000`],
  ])('%s key: MALFORMED', async (_name, key) => {
    const res = await validate({ key });
    expect(res).toMatchObject({ valid: false, code: ValidationCode.VALIDATION_CODE_MALFORMED, keyId: '' });
  });

  test('bad request fields other than the key are INVALID_ARGUMENT', async () => {
    await expectInvalid(validate({ key: 'x', service: 'Not Valid' }), 'service');
    await expectInvalid(validate({ key: 'x', requiredScopes: ['a b'] }), 'required_scopes[0]');
    await expectInvalid(validate({ key: 'x', requiredScopes: many(65, (i) => `s${i}`) }), 'required_scopes');
    await expectInvalid(validate({ key: 'x', clientIp: '999.1.1.1' }), 'client_ip');
    await expectInvalid(validate({ key: 'x', cost: 2_000_000 }), 'cost');
  });

  test('batch: at most 1000 items; a bad field names its item', async () => {
    const batch = (requests: Partial<ValidateKeyRequest>[]) =>
      call(kw.keys.batchValidateKeys.bind(kw.keys), BatchValidateKeysRequest.fromPartial({ requests }), kw.root);
    await expectInvalid(batch(many(1001, () => ({ key: "x" }))), 'requests');
    await expectInvalid(batch([{ key: 'x' }, { key: 'y', clientIp: 'nope' }]), 'requests[1].client_ip');
    const res = await batch(many(1000, () => ({ key: "x" })));
    expect(res.responses).toHaveLength(1000);
    expect(res.responses.every((r) => r.code === ValidationCode.VALIDATION_CODE_MALFORMED)).toBe(true);
  });
});
