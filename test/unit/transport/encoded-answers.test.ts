import { credentials, Metadata, Server, ServerCredentials, type ServiceError } from '@grpc/grpc-js';
import fc from 'fast-check';
import { KeyValidator } from '../../../src/app/key-validator';
import { toValidateKeyResponse } from '../../../src/codec/proto-mapping';
import { ManualClock } from '../../../src/domain/clock';
import { generateKey } from '../../../src/domain/key-format';
import { hashKey } from '../../../src/domain/key-hash';
import { applyChanges } from '../../../src/domain/key-record';
import { toCachedRecord, toValidationEntry, type CachedKeyRecord, type Decision } from '../../../src/domain/validation';
import {
  KeyServiceClient,
  KeyServiceService,
  ValidateKeyResponse,
  ValidateKeyStreamResponse,
  type ValidateKeyStreamRequest,
} from '../../../src/gen/keyward/v1/key_service.pb';
import type { Logger } from '../../../src/logger';
import { EncodedAnswers, encodedBytesOf } from '../../../src/transport/grpc/encoded-answers';
import { createKeyService } from '../../../src/transport/grpc/key-service';
import { KeyServiceDefinition, serializeAnswer, serializeStreamAnswer } from '../../../src/transport/grpc/key-service-definition';
import { seededBytes } from '../helpers/bytes';
import { makeRecord } from '../helpers/records';

const generated = (answer: ValidateKeyResponse) => Buffer.from(ValidateKeyResponse.encode(answer).finish());
const generatedStream = (msg: ValidateKeyStreamResponse) => Buffer.from(ValidateKeyStreamResponse.encode(msg).finish());

/** A record as the validation cache keeps it: slim and frozen. */
const cached = (...over: Parameters<typeof makeRecord>) => toCachedRecord(makeRecord(...over));
const valid = (record: CachedKeyRecord = cached()): Decision => ({ code: 'VALID', reason: '', record });

describe('EncodedAnswers', () => {
  it('answers a VALID decision with what the mapping makes, and its bytes with what the generated encoder writes', () => {
    const record = cached({ scopes: ['orders:read', 'orders:*'], metadata: { env: 'test', team: 'a' }, expiresAt: 1_800_000_000_123 });
    const d = valid(record);
    const answer = new EncodedAnswers().answer(d);
    expect(answer).toEqual(toValidateKeyResponse(d));
    expect(encodedBytesOf(answer)).toEqual(generated(toValidateKeyResponse(d)));
  });

  it('reuses the answer for the same record object, and makes a new one for another object, even an equal one', () => {
    const answers = new EncodedAnswers();
    const record = cached();
    const first = answers.answer(valid(record));
    expect(answers.answer(valid(record))).toBe(first);
    const twin = Object.freeze({ ...record });
    const other = answers.answer(valid(twin));
    expect(other).not.toBe(first);
    expect(encodedBytesOf(other)).toEqual(encodedBytesOf(first));
  });

  it('never gives a changed record the old answer', () => {
    const answers = new EncodedAnswers();
    const full = makeRecord({ scopes: ['a'], metadata: { v: '1' } });
    const before = answers.answer(valid(toCachedRecord(full)));
    const changed = toCachedRecord(applyChanges(full, { scopes: ['b'], metadata: { v: '2' } }, 2_000));
    const after = answers.answer(valid(changed));
    expect(after.scopes).toEqual(['b']);
    expect(after.metadata).toEqual({ v: '2' });
    expect(ValidateKeyResponse.decode(encodedBytesOf(after)!)).toEqual(toValidateKeyResponse(valid(changed)));
    expect(encodedBytesOf(before)).not.toEqual(encodedBytesOf(after));
  });

  it('does not reuse an answer made for another reason', () => {
    const answers = new EncodedAnswers();
    const record = cached();
    answers.answer(valid(record));
    const d: Decision = { code: 'VALID', reason: 'something_else', record };
    const answer = answers.answer(d);
    expect(answer.reason).toBe('something_else');
    expect(encodedBytesOf(answer)).toEqual(generated(toValidateKeyResponse(d)));
  });

  it('does not pre-encode denials, answers without a record, or answers with limits', () => {
    const answers = new EncodedAnswers();
    const record = cached();
    const decisions: Decision[] = [
      { code: 'NOT_FOUND', reason: '' },
      { code: 'MALFORMED', reason: 'bad_format_or_checksum' },
      { code: 'REVOKED', reason: 'revoked', record },
      { code: 'INSUFFICIENT_SCOPE', reason: 'missing_scope:x', record },
      { code: 'VALID', reason: '', record, limits: { creditsRemaining: 5, rateLimits: [{ name: 'rps', limit: 10, remaining: 9, resetAt: 5_000 }] } },
      { code: 'RATE_LIMITED', reason: 'rate_limit:rps', record, limits: { rateLimits: [] } },
      // not frozen: a record read from the store for this call only (no cache), not worth keeping
      { code: 'VALID', reason: '', record: makeRecord() },
    ];
    for (const d of decisions) {
      const answer = answers.answer(d);
      expect(encodedBytesOf(answer)).toBeUndefined();
      expect(answer).toEqual(toValidateKeyResponse(d));
    }
    expect(answers.size).toBe(0);
  });

  it('keeps at most maxEntries answers', () => {
    const answers = new EncodedAnswers({ maxEntries: 3 });
    for (let i = 0; i < 10; i++) answers.answer(valid(cached({ id: `key_${i}` })));
    expect(answers.size).toBe(3);
  });

  it('hands out frozen answers, so no caller can change what others are sent', () => {
    const answer = new EncodedAnswers().answer(valid());
    expect(Object.isFrozen(answer)).toBe(true);
  });
});

describe('KeyServiceDefinition serializers', () => {
  it('write the same bytes as the generated encoders, with or without pre-encoded answers', () => {
    const answers = new EncodedAnswers();
    const record = cached({ scopes: ['s:*', 'x'], metadata: { a: '1' }, expiresAt: 1_900_000_000_000 });
    const pre = answers.answer(valid(record));
    const plain = toValidateKeyResponse({ code: 'NOT_FOUND', reason: '' });
    expect(serializeAnswer(pre)).toEqual(generated(toValidateKeyResponse(valid(record))));
    expect(serializeAnswer(plain)).toEqual(generated(plain));
  });

  it('frame stream answers exactly as the generated encoder does, for any id', () => {
    const answers = new EncodedAnswers();
    const pre = answers.answer(valid());
    const plainAnswer = toValidateKeyResponse(valid());
    const ids = [0, 1, 127, 128, 300, 16_383, 16_384, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32 + 5, 2 ** 35 + 7, Number.MAX_SAFE_INTEGER];
    for (const id of ids) {
      const expected = generatedStream({ id, response: plainAnswer, error: undefined });
      expect(serializeStreamAnswer({ id, response: pre, error: undefined })).toEqual(expected);
      expect(ValidateKeyStreamResponse.decode(serializeStreamAnswer({ id, response: pre, error: undefined })).id).toBe(id);
    }
    fc.assert(
      fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (id) => {
        expect(serializeStreamAnswer({ id, response: pre, error: undefined })).toEqual(generatedStream({ id, response: plainAnswer, error: undefined }));
      }),
    );
  });

  it('encode stream errors and answers that were not pre-encoded with the generated encoder', () => {
    const error = { code: 'INVALID_ARGUMENT', message: 'bad', field: 'client_ip' };
    const msgs: ValidateKeyStreamResponse[] = [
      { id: 9, response: undefined, error },
      { id: 9, response: toValidateKeyResponse({ code: 'NOT_FOUND', reason: '' }), error: undefined },
      { id: 0, response: undefined, error: undefined },
    ];
    for (const m of msgs) expect(serializeStreamAnswer(m)).toEqual(generatedStream(m));
  });

  it('keep the generated definition otherwise', () => {
    for (const name of ['validateKey', 'batchValidateKeys', 'validateKeyStream'] as const) {
      const { responseSerialize: _a, ...mine } = KeyServiceDefinition[name];
      const { responseSerialize: _b, ...theirs } = KeyServiceService[name];
      expect(mine).toEqual(theirs);
    }
  });
});

describe('KeyService over grpc-js with KeyServiceDefinition', () => {
  const clock = new ManualClock(1_700_000_000_000);
  const key = generateKey('sk', seededBytes(7));
  const record = makeRecord({ hash: hashKey(key), scopes: ['orders:read'], metadata: { env: 'prod' } });
  const entry = toValidationEntry(toCachedRecord(record));
  const validator = new KeyValidator({ source: { lookup: (h) => (h === record.hash ? entry : undefined) }, clock });
  const logger = { error: () => undefined } as unknown as Logger;
  let server: Server;
  let client: KeyServiceClient;

  beforeAll(async () => {
    server = new Server();
    server.addService(KeyServiceDefinition, createKeyService({ validator, logger }));
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    client = new KeyServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  });

  afterAll(() => {
    client.close();
    server.forceShutdown();
  });

  const request = (k: string) => ({ key: k, service: '', requiredScopes: [], clientIp: '', cost: 0 });

  it('answers ValidateKey the same whether the answer was pre-encoded or not', async () => {
    const call = () =>
      new Promise<ValidateKeyResponse>((resolve, reject) =>
        client.validateKey(request(key), new Metadata(), (err: ServiceError | null, res: ValidateKeyResponse) => (err ? reject(err) : resolve(res))),
      );
    const expected = toValidateKeyResponse({ code: 'VALID', reason: '', record });
    expect(await call()).toEqual(expected);
    expect(await call()).toEqual(expected);
  });

  it('answers every stream message with its id and the full answer', async () => {
    const stream = client.validateKeyStream();
    const got: ValidateKeyStreamResponse[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (m: ValidateKeyStreamResponse) => got.push(m));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    const ids = [1, 2 ** 31 + 3, 2 ** 40, 0];
    for (const id of ids) stream.write({ id, request: request(key) } satisfies ValidateKeyStreamRequest);
    stream.write({ id: 77, request: request('sk_not_a_key') } satisfies ValidateKeyStreamRequest);
    stream.end();
    await done;
    const valid = toValidateKeyResponse({ code: 'VALID', reason: '', record });
    expect(got).toEqual([
      ...ids.map((id) => ({ id, response: valid, error: undefined })),
      { id: 77, response: toValidateKeyResponse({ code: 'MALFORMED', reason: 'bad_format_or_checksum' }), error: undefined },
    ]);
  });
});
