import { Metadata } from '@grpc/grpc-js';
import { CreateKeyRequest } from '../../src/gen/keyward/v1/key_admin_service.pb';
import { ValidateKeyRequest, ValidationCode, type ValidateKeyStreamResponse } from '../../src/gen/keyward/v1/key_service.pb';
import { call, startKeyward, type KeywardProcess } from '../support/keyward-process';

let kw: KeywardProcess;
beforeAll(async () => {
  kw = await startKeyward();
});
afterAll(async () => {
  await kw.stop();
});

test('ValidateKeyStream answers every request once, by id, with many in flight on one stream', async () => {
  const { secret } = await call(kw.admin.createKey.bind(kw.admin), CreateKeyRequest.fromPartial({ service: 'orders', scopes: ['orders:read'] }), kw.root);
  const stream = kw.keys.validateKeyStream(new Metadata());
  const answers = new Map<number, ValidateKeyStreamResponse[]>();
  const done = new Promise<void>((resolve, reject) => {
    stream.on('data', (r: ValidateKeyStreamResponse) => answers.set(r.id, [...(answers.get(r.id) ?? []), r]));
    stream.on('end', resolve);
    stream.on('error', reject);
  });
  const n = 3000;
  const expected = new Map<number, string>();
  for (let id = 1; id <= n; id++) {
    const kind = id % 4;
    const request = ValidateKeyRequest.fromPartial(
      kind === 0 ? { key: secret, requiredScopes: ['orders:read'] }
        : kind === 1 ? { key: secret, requiredScopes: ['orders:write'] }
          : kind === 2 ? { key: 'garbage' }
            : { key: secret, clientIp: 'not-an-ip' },
    );
    expected.set(id, ['VALID', 'INSUFFICIENT_SCOPE', 'MALFORMED', 'error:INVALID_ARGUMENT:client_ip'][kind]);
    stream.write({ id, request });
  }
  stream.end();
  await done;

  expect(answers.size).toBe(n);
  for (const [id, list] of answers) {
    expect(list).toHaveLength(1);
    const r = list[0];
    const got = r.error
      ? `error:${r.error.code}:${r.error.field}`
      : ValidationCode[r.response!.code].replace('VALIDATION_CODE_', '');
    expect(`${id}:${got}`).toBe(`${id}:${expected.get(id)}`);
  }
});

test('a stream with no requests ends cleanly', async () => {
  const stream = kw.keys.validateKeyStream(new Metadata());
  const ended = new Promise<number>((resolve, reject) => {
    let count = 0;
    stream.on('data', () => count++);
    stream.on('end', () => resolve(count));
    stream.on('error', reject);
  });
  stream.end();
  expect(await ended).toBe(0);
});
