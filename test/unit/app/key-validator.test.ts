import fc from 'fast-check';
import { ValidationCache } from '../../../src/adapters/cache/validation-cache';
import { KeyValidator, type UsageRecorder, type ValidateInput } from '../../../src/app/key-validator';
import { ManualClock } from '../../../src/domain/clock';
import { InvalidArgumentError, StoreUnavailableError } from '../../../src/domain/errors';
import { generateKey, MAX_KEY_LENGTH } from '../../../src/domain/key-format';
import { hashKey } from '../../../src/domain/key-hash';
import type { KeyRecord } from '../../../src/domain/key-record';
import { toValidationEntry, type Decision, type ValidationEntry } from '../../../src/domain/validation';
import { MISS, type ValidationSource } from '../../../src/ports/validation-source';
import { seededBytes } from '../helpers/bytes';
import { makeRecord } from '../helpers/records';

const T0 = 1_700_000_000_000;

function input(overrides: Partial<ValidateInput> = {}): ValidateInput {
  return { key: '', service: '', requiredScopes: [], clientIp: '', cost: 1, ...overrides };
}

/** A source over a fixed map of hash -> record that counts lookups. */
class FakeSource implements ValidationSource {
  readonly lookups: string[] = [];
  constructor(
    private readonly records: Map<string, KeyRecord>,
    private readonly async = false,
  ) {}
  lookup(hash: string): ValidationEntry | undefined | Promise<ValidationEntry | undefined> {
    this.lookups.push(hash);
    const r = this.records.get(hash);
    const entry = r && toValidationEntry(r);
    return this.async ? Promise.resolve(entry) : entry;
  }
}

/** A source that must never be consulted. */
const forbiddenSource: ValidationSource = {
  lookup: () => {
    throw new Error('the source must not be consulted for a malformed key');
  },
};

function invalid(fn: () => unknown, field: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InvalidArgumentError);
  expect((caught as InvalidArgumentError).field).toBe(field);
}

describe('KeyValidator.checkRequest', () => {
  it('passes a valid request through, normalising cost 0 to 1', () => {
    const req = input({ key: 'anything', service: 'orders', requiredScopes: ['a', 'b:*'], clientIp: '10.0.0.1', cost: 0 });
    const checked = KeyValidator.checkRequest(req);
    expect(checked).toEqual({ ...req, cost: 1 });
    expect(checked).not.toBe(req);
    expect(req.cost).toBe(0);
    expect(KeyValidator.checkRequest(input({ cost: 7 })).cost).toBe(7);
  });

  it('does not judge the key: a malformed key is an outcome, not a request error', () => {
    expect(() => KeyValidator.checkRequest(input({ key: 'not a key \u0000' }))).not.toThrow();
  });

  it('accepts an empty service (any service) and empty scopes and client ip', () => {
    expect(() => KeyValidator.checkRequest(input())).not.toThrow();
  });

  it.each([
    ['service', { service: 'Bad Service' }, 'service'],
    ['too many scopes', { requiredScopes: Array.from({ length: 65 }, (_, i) => `s${i}`) }, 'required_scopes'],
    ['a bad scope', { requiredScopes: ['ok', 'bad scope'] }, 'required_scopes[1]'],
    ['a bad client ip', { clientIp: 'localhost' }, 'client_ip'],
    ['a negative cost', { cost: -1 }, 'cost'],
    ['a fractional cost', { cost: 1.5 }, 'cost'],
    ['a huge cost', { cost: 1_000_001 }, 'cost'],
  ] as const)('names the field of %s, without and with a prefix', (_label, overrides, field) => {
    invalid(() => KeyValidator.checkRequest(input(overrides as Partial<ValidateInput>)), field);
    invalid(() => KeyValidator.checkRequest(input(overrides as Partial<ValidateInput>), 'requests[3].'), `requests[3].${field}`);
  });
});

describe('KeyValidator.validate', () => {
  const key = generateKey('sk', seededBytes(1));
  const record = makeRecord({ hash: hashKey(key), service: 'orders', scopes: ['orders:read'] });
  let clock: ManualClock;

  beforeEach(() => {
    clock = new ManualClock(T0);
  });

  it('answers MALFORMED synchronously without consulting the source', () => {
    const v = new KeyValidator({ source: forbiddenSource, clock });
    for (const bad of ['', 'sk_short', key.slice(0, -1), `${key.slice(0, -1)}${key.endsWith('0') ? '1' : '0'}`, key.toUpperCase()]) {
      const d = v.validate(input({ key: bad })) as Decision;
      expect(d).not.toBeInstanceOf(Promise);
      expect(d).toEqual({ code: 'MALFORMED', reason: 'bad_format_or_checksum' });
      expect(d.record).toBeUndefined();
    }
  });

  it('property: no malformed key ever reaches the source', () => {
    const source = new FakeSource(new Map());
    const v = new KeyValidator({ source, clock });
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: 'binary', maxLength: 80 }), fc.string({ maxLength: 600 })), (s) => {
        const d = v.validate(input({ key: s })) as Decision;
        expect(d.code).toBe('MALFORMED');
      }),
      { numRuns: 500 },
    );
    expect(source.lookups).toEqual([]);
  });

  it('looks up the SHA-256 of a well-formed key, synchronously for a synchronous source', () => {
    const source = new FakeSource(new Map([[record.hash, record]]));
    const v = new KeyValidator({ source, clock });
    const d = v.validate(input({ key, service: 'orders', requiredScopes: ['orders:read'] })) as Decision;
    expect(d).not.toBeInstanceOf(Promise);
    expect(d.code).toBe('VALID');
    expect(d.record).toEqual(record);
    expect(source.lookups).toEqual([hashKey(key)]);
  });

  it('returns a promise for an asynchronous source', async () => {
    const source = new FakeSource(new Map([[record.hash, record]]), true);
    const v = new KeyValidator({ source, clock });
    const result = v.validate(input({ key }));
    expect(result).toBeInstanceOf(Promise);
    expect((await result).code).toBe('VALID');
  });

  it('NOT_FOUND for a well-formed unknown key', async () => {
    const other = generateKey('sk', seededBytes(2));
    const source = new FakeSource(new Map([[record.hash, record]]));
    const d = await new KeyValidator({ source, clock }).validate(input({ key: other }));
    expect(d).toEqual({ code: 'NOT_FOUND', reason: '' });
    expect(source.lookups).toEqual([hashKey(other)]);
  });

  it('applies the service filter: empty means any, another service is NOT_FOUND', async () => {
    const v = new KeyValidator({ source: new FakeSource(new Map([[record.hash, record]])), clock });
    expect((await v.validate(input({ key, service: '' }))).code).toBe('VALID');
    expect((await v.validate(input({ key, service: 'orders' }))).code).toBe('VALID');
    const d = await v.validate(input({ key, service: 'billing' }));
    expect(d.code).toBe('NOT_FOUND');
    expect(d.record).toBeUndefined();
  });

  it('checks scopes and time with the injected clock', async () => {
    const timed = { ...record, notBefore: T0 + 100, expiresAt: T0 + 200 };
    const v = new KeyValidator({ source: new FakeSource(new Map([[timed.hash, timed]])), clock });
    expect((await v.validate(input({ key }))).code).toBe('NOT_YET_VALID');
    clock.set(T0 + 100);
    expect((await v.validate(input({ key }))).code).toBe('VALID');
    const d = await v.validate(input({ key, requiredScopes: ['orders:write'] }));
    expect(d).toMatchObject({ code: 'INSUFFICIENT_SCOPE', reason: 'missing_scope:orders:write' });
    clock.set(T0 + 200);
    expect((await v.validate(input({ key }))).code).toBe('EXPIRED');
  });

  it('propagates a store failure from an asynchronous source', async () => {
    const failing: ValidationSource = { lookup: () => Promise.reject(new StoreUnavailableError('down')) };
    await expect(new KeyValidator({ source: failing, clock }).validate(input({ key }))).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  it('tells the usage recorder about VALID decisions only', async () => {
    const calls: Array<[string, number]> = [];
    const usage: UsageRecorder = { record: (id, now) => calls.push([id, now]) };
    const disabled = makeRecord({ id: 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9B', hash: hashKey(generateKey('sk', seededBytes(3))), state: 'disabled' });
    const source = new FakeSource(new Map([[record.hash, record], [disabled.hash, disabled]]));
    const v = new KeyValidator({ source, clock, usage });
    await v.validate(input({ key }));
    clock.advance(5);
    await v.validate(input({ key, requiredScopes: ['nope'] }));
    await v.validate(input({ key, service: 'billing' }));
    await v.validate(input({ key: generateKey('sk', seededBytes(3)) }));
    await v.validate(input({ key: 'malformed' }));
    await v.validate(input({ key: generateKey('sk', seededBytes(4)) }));
    await v.validate(input({ key }));
    expect(calls).toEqual([
      [record.id, T0],
      [record.id, T0 + 5],
    ]);
  });
});

describe('KeyValidator.validate with a source that can peek', () => {
  const key = generateKey('sk', seededBytes(11));
  const record = makeRecord({ hash: hashKey(key), service: 'orders', scopes: ['orders:read'] });
  const clock = new ManualClock(T0);

  /** Peeks answer from `known`; lookups are counted and answer from the same map. */
  function peekingSource(known: Map<string, KeyRecord>) {
    const calls = { peeks: [] as string[], lookups: [] as string[] };
    const source: ValidationSource = {
      peek: (hash) => {
        calls.peeks.push(hash);
        const r = known.get(hash);
        return r === undefined ? MISS : toValidationEntry(r);
      },
      lookup: (hash) => {
        calls.lookups.push(hash);
        const r = known.get(hash);
        return r && toValidationEntry(r);
      },
    };
    return { source, calls };
  }

  it('answers a peeked hit without a lookup', () => {
    const { source, calls } = peekingSource(new Map([[record.hash, record]]));
    const d = new KeyValidator({ source, clock }).validate(input({ key, requiredScopes: ['orders:read'] })) as Decision;
    expect(d).toMatchObject({ code: 'VALID', record });
    expect(calls).toEqual({ peeks: [record.hash], lookups: [] });
  });

  it('parses and looks up on a peek miss; a malformed key reaches no lookup', () => {
    const { source, calls } = peekingSource(new Map());
    const v = new KeyValidator({ source, clock });
    expect((v.validate(input({ key })) as Decision).code).toBe('NOT_FOUND');
    expect(calls.lookups).toEqual([record.hash]);
    expect(v.validate(input({ key: 'sk_not_a_key' }))).toEqual({ code: 'MALFORMED', reason: 'bad_format_or_checksum' });
    expect(calls.lookups).toEqual([record.hash]);
  });

  it('rejects a key longer than MAX_KEY_LENGTH before hashing or peeking', () => {
    const { source, calls } = peekingSource(new Map());
    const v = new KeyValidator({ source, clock });
    expect(v.validate(input({ key: 'a'.repeat(MAX_KEY_LENGTH + 1) }))).toEqual({ code: 'MALFORMED', reason: 'bad_format_or_checksum' });
    expect(calls).toEqual({ peeks: [], lookups: [] });
  });

  it('property: with the ValidationCache, every answer is the one a validator without peeking gives', async () => {
    const keys = Array.from({ length: 4 }, (_, i) => generateKey('sk', seededBytes(100 + i)));
    const records = new Map(keys.slice(0, 3).map((k, i) => [hashKey(k), makeRecord({ id: `key_${i}`, hash: hashKey(k), state: i === 2 ? 'disabled' : 'active' })]));
    const malformed = ['', 'sk_short', `${keys[0].slice(0, -1)}!`, keys[1].toUpperCase(), 'x'.repeat(600)];
    const op = fc.oneof(
      fc.record({ kind: fc.constant('validate' as const), key: fc.constantFrom(...keys, ...malformed), scope: fc.constantFrom('', 'orders:read', 'x') }),
      fc.record({ kind: fc.constant('put' as const), i: fc.integer({ min: 0, max: 2 }) }),
      fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 4_000 }) }),
    );
    await fc.assert(
      fc.asyncProperty(fc.array(op, { maxLength: 40 }), async (ops) => {
        const t = new ManualClock(T0);
        const cacheOf = () =>
          new ValidationCache({ load: async (h) => records.get(h), clock: t, maxEntries: 10, ttlMs: 3_000, negativeTtlMs: 1_000, maxStalenessMs: 0 });
        const withPeek = cacheOf();
        const withoutPeek = cacheOf();
        const a = new KeyValidator({ source: withPeek, clock: t });
        const b = new KeyValidator({ source: { lookup: (h) => withoutPeek.lookup(h) }, clock: t });
        for (const o of ops) {
          if (o.kind === 'advance') t.advance(o.ms);
          else if (o.kind === 'put') {
            const r = [...records.values()][o.i];
            withPeek.put(r);
            withoutPeek.put(r);
          } else {
            const req = input({ key: o.key, requiredScopes: o.scope ? [o.scope] : [] });
            expect(await a.validate(req)).toEqual(await b.validate(req));
          }
        }
        expect(withPeek.stats).toEqual(withoutPeek.stats);
      }),
      { numRuns: 200 },
    );
  });
});
