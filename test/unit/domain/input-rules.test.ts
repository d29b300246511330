import fc from 'fast-check';
import { InvalidArgumentError } from '../../../src/domain/errors';
import {
  checkClientIp,
  checkCost,
  checkKeyId,
  checkMetadata,
  checkPageSize,
  checkPrefix,
  checkScopes,
  checkService,
  checkText,
  checkValidityWindow,
  LIMITS,
} from '../../../src/domain/input-rules';

/** Runs `fn`, expecting an InvalidArgumentError for `field`; returns it. */
function invalid(fn: () => unknown, field: string): InvalidArgumentError {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InvalidArgumentError);
  const e = caught as InvalidArgumentError;
  expect(e.field).toBe(field);
  expect(e.kind).toBe('invalid_argument');
  expect(e.message.startsWith(`${field}: `)).toBe(true);
  return e;
}

describe('LIMITS', () => {
  it('has the documented values', () => {
    expect(LIMITS).toMatchObject({
      ownerLength: 128,
      nameLength: 128,
      scopeCount: 64,
      scopeLength: 128,
      metadataEntries: 32,
      metadataKeyLength: 64,
      metadataValueLength: 512,
      metadataTotalBytes: 4096,
      prefixLength: 32,
      revokeReasonLength: 256,
      pageSizeDefault: 100,
      pageSizeMax: 1000,
      maxCost: 1_000_000,
    });
  });
});

describe('checkService', () => {
  it.each(['a', '0', 'orders', 'orders-eu', 'a-', '0-0', 'keyward-admin', 'a'.repeat(63), `a${'-'.repeat(62)}`])(
    'accepts %j and returns it',
    (s) => {
      expect(checkService('service', s)).toBe(s);
    },
  );

  it.each(['', '-a', 'A', 'Orders', 'a_b', 'a.b', 'a b', 'a'.repeat(64), 'orders\n', 'é', 'a/b'])('rejects %j', (s) => {
    invalid(() => checkService('requests[1].service', s), 'requests[1].service');
  });
});

describe('checkText', () => {
  it('accepts up to max characters and rejects max + 1', () => {
    expect(checkText('owner', 'x'.repeat(128), 128)).toBe('x'.repeat(128));
    invalid(() => checkText('owner', 'x'.repeat(129), 128), 'owner');
    expect(checkText('name', '', 0)).toBe('');
    invalid(() => checkText('name', 'x', 0), 'name');
  });

  it.each(['\u0000', '\u0001', '\t', '\n', '\r', '\u001b', '\u001f', '\u007f'])('rejects the control character %j', (c) => {
    invalid(() => checkText('name', `ab${c}cd`, 128), 'name');
  });

  it.each(['', 'team-a', 'Équipe Ω', '日本語チーム', '😀 emoji', '\u0080 and \u00a0', 'quotes "\' and \\'])('accepts %j', (s) => {
    expect(checkText('name', s, 128)).toBe(s);
  });

  it('property: accepts exactly the strings without control characters within the limit', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 20 }), fc.integer({ min: 0, max: 20 }), (s, max) => {
        const ok = s.length <= max && !/[\u0000-\u001f\u007f]/.test(s);
        if (ok) expect(checkText('f', s, max)).toBe(s);
        else invalid(() => checkText('f', s, max), 'f');
      }),
      { numRuns: 500 },
    );
  });
});

describe('checkScopes', () => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => `s${i}`);

  it('accepts up to 64 scopes and rejects 65 (field names the list)', () => {
    expect(checkScopes('scopes', many(64))).toEqual(many(64));
    invalid(() => checkScopes('scopes', many(65)), 'scopes');
  });

  it('counts scopes before removing duplicates', () => {
    invalid(() => checkScopes('scopes', new Array<string>(65).fill('a')), 'scopes');
  });

  it('names the index of the first bad scope', () => {
    invalid(() => checkScopes('scopes', ['a', 'b', 'bad scope', '']), 'scopes[2]');
    invalid(() => checkScopes('scopes', ['']), 'scopes[0]');
    invalid(() => checkScopes('required_scopes', ['a', 'b*c']), 'required_scopes[1]');
  });

  it('accepts a 128-character scope and rejects 129', () => {
    expect(checkScopes('scopes', ['a'.repeat(128)])).toEqual(['a'.repeat(128)]);
    invalid(() => checkScopes('scopes', ['ok', 'a'.repeat(129)]), 'scopes[1]');
  });

  it('removes duplicates, keeping the first occurrence order, and returns a new array', () => {
    const input = ['b', 'a', 'b', 'c', 'a', '*'];
    const out = checkScopes('scopes', input);
    expect(out).toEqual(['b', 'a', 'c', '*']);
    expect(out).not.toBe(input);
    expect(checkScopes('scopes', [])).toEqual([]);
  });
});

describe('checkMetadata', () => {
  const entries = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, 'v']));

  it('accepts up to 32 entries and rejects 33', () => {
    expect(checkMetadata('metadata', entries(32))).toEqual(entries(32));
    invalid(() => checkMetadata('metadata', entries(33)), 'metadata');
  });

  it('accepts a 64-character key; rejects 65, empty and control characters (field: the map)', () => {
    expect(checkMetadata('metadata', { ['k'.repeat(64)]: 'v' })).toEqual({ ['k'.repeat(64)]: 'v' });
    invalid(() => checkMetadata('metadata', { ['k'.repeat(65)]: 'v' }), 'metadata');
    invalid(() => checkMetadata('metadata', { '': 'v' }), 'metadata');
    invalid(() => checkMetadata('metadata', { 'a\nb': 'v' }), 'metadata');
    invalid(() => checkMetadata('metadata', { 'a\u007f': 'v' }), 'metadata');
  });

  it('accepts a 512-character value; rejects 513 and control characters, naming the entry', () => {
    expect(checkMetadata('metadata', { k: 'v'.repeat(512) })).toEqual({ k: 'v'.repeat(512) });
    invalid(() => checkMetadata('metadata', { a: 'ok', k: 'v'.repeat(513) }), 'metadata["k"]');
    invalid(() => checkMetadata('metadata', { k: 'line\nbreak' }), 'metadata["k"]');
    invalid(() => checkMetadata('metadata', { 'we"ird': '\u0000' }), 'metadata["we\\"ird"]');
    expect(checkMetadata('metadata', { k: '' })).toEqual({ k: '' });
  });

  it('limits the total to 4096 UTF-8 bytes of keys and values', () => {
    // 8 entries of a 2-byte key and 255 two-byte characters: 8 * (2 + 510) = 4096 bytes.
    const atLimit = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, 'é'.repeat(255)]));
    expect(checkMetadata('metadata', atLimit)).toEqual(atLimit);
    // One more byte, although every value is far below 512 characters.
    const over = { ...atLimit, k7: `${'é'.repeat(255)}a` };
    invalid(() => checkMetadata('metadata', over), 'metadata');
    // The key bytes count too.
    const overByKey = { ...atLimit, k70: 'é'.repeat(255) };
    delete (overByKey as Record<string, string>).k7;
    invalid(() => checkMetadata('metadata', overByKey), 'metadata');
  });

  it('returns a copy', () => {
    const input = { a: '1' };
    const out = checkMetadata('metadata', input);
    expect(out).toEqual(input);
    expect(out).not.toBe(input);
  });
});

describe('checkPrefix', () => {
  it.each(['sk', 'sk_live', 'pk_test', 'a'.repeat(32)])('accepts %j', (p) => {
    expect(checkPrefix('prefix', p)).toBe(p);
  });
  it.each(['', 'SK', 'sk-live', '1sk', 'a'.repeat(33), 'a_b_c_d_e', 'sk_'])('rejects %j', (p) => {
    invalid(() => checkPrefix('prefix', p), 'prefix');
  });
});

describe('checkKeyId', () => {
  it('accepts a key id and rejects anything else', () => {
    expect(checkKeyId('key_id', 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A')).toBe('key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A');
    for (const bad of ['', 'key_', '01JD6Z3M8Q4ZC2N1XW7V5TBR9A', 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9a', 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9AA']) {
      invalid(() => checkKeyId('key_id', bad), 'key_id');
    }
  });
});

describe('checkPageSize', () => {
  it.each([
    [0, 100],
    [1, 1],
    [100, 100],
    [999, 999],
    [1000, 1000],
  ])('maps %d to %d', (input, expected) => {
    expect(checkPageSize('page_size', input)).toBe(expected);
  });
  it.each([-1, 1001, 1.5, Number.NaN, Number.POSITIVE_INFINITY, -0.5, 2 ** 31])('rejects %d', (n) => {
    invalid(() => checkPageSize('page_size', n), 'page_size');
  });
});

describe('checkClientIp', () => {
  it.each(['', '127.0.0.1', '10.0.0.255', '::1', '::', '2001:db8::1', '::ffff:192.0.2.1'])('accepts %j', (ip) => {
    expect(checkClientIp('client_ip', ip)).toBe(ip);
  });
  it.each(['localhost', '256.0.0.1', '1.2.3', ' 127.0.0.1', '127.0.0.1 ', '1.2.3.4:80', 'example.com', ':::'])('rejects %j', (ip) => {
    invalid(() => checkClientIp('client_ip', ip), 'client_ip');
  });
});

describe('checkCost', () => {
  it.each([
    [0, 1],
    [1, 1],
    [2, 2],
    [1_000_000, 1_000_000],
  ])('maps %d to %d', (input, expected) => {
    expect(checkCost('cost', input)).toBe(expected);
  });
  it.each([-1, 1_000_001, 0.5, Number.NaN, Number.POSITIVE_INFINITY])('rejects %d', (n) => {
    invalid(() => checkCost('requests[0].cost', n), 'requests[0].cost');
  });
});

describe('checkValidityWindow', () => {
  const now = 10_000;

  it('accepts no window, a future expiry, and a not-before alone (past or future)', () => {
    expect(() => checkValidityWindow(now, undefined, undefined)).not.toThrow();
    expect(() => checkValidityWindow(now, undefined, now + 1)).not.toThrow();
    expect(() => checkValidityWindow(now, now - 5000, undefined)).not.toThrow();
    expect(() => checkValidityWindow(now, now + 5000, undefined)).not.toThrow();
    expect(() => checkValidityWindow(now, now + 5000, now + 5001)).not.toThrow();
    expect(() => checkValidityWindow(now, now - 5000, now + 1)).not.toThrow();
  });

  it('rejects an expiry now or in the past', () => {
    invalid(() => checkValidityWindow(now, undefined, now), 'expire_time');
    invalid(() => checkValidityWindow(now, undefined, now - 1), 'expire_time');
    invalid(() => checkValidityWindow(now, undefined, 0), 'expire_time');
  });

  it('rejects an expiry at or before not-before', () => {
    const e1 = invalid(() => checkValidityWindow(now, now + 5000, now + 5000), 'expire_time');
    expect(e1.message).toContain('not_before_time');
    invalid(() => checkValidityWindow(now, now + 5000, now + 4999), 'expire_time');
  });
});
