import fc from 'fast-check';
import { isValidScope, MAX_SCOPE_LENGTH, SCOPE_PATTERN, ScopeSet, sharedScopes } from '../../../src/domain/scopes';

const SCOPE_CHARS = 'abcXYZ019:._/-';
const scopeBody = (max = 20) => fc.string({ unit: fc.constantFrom(...SCOPE_CHARS), minLength: 1, maxLength: max });
const anyText = fc.string({ unit: fc.constantFrom(...SCOPE_CHARS, '*', ' ', 'é'), maxLength: 20 });

describe('isValidScope', () => {
  it('has the documented limits', () => {
    expect(MAX_SCOPE_LENGTH).toBe(128);
    expect(SCOPE_PATTERN.test('orders:read')).toBe(true);
  });

  it.each([
    'a',
    '*',
    'orders:read',
    'orders:*',
    'orders*',
    'a.b_c/d-e:F9',
    'A-Z/0.9',
    'a'.repeat(128),
    `${'a'.repeat(127)}*`,
    ':',
    '/',
    '-',
  ])('accepts %j', (s) => {
    expect(isValidScope(s)).toBe(true);
  });

  it.each([
    '',
    'a'.repeat(129),
    `${'a'.repeat(128)}*`,
    '**',
    '*a',
    'a*b',
    'a**',
    'orders:*:read',
    'a b',
    ' a',
    'a\n',
    '\na',
    '*\n',
    'a,b',
    'é',
    'a+b',
    'a@b',
    'a\u0000',
  ])('rejects %j', (s) => {
    expect(isValidScope(s)).toBe(false);
  });

  it('agrees with a reference predicate', () => {
    const ref = (s: string): boolean => {
      if (s.length < 1 || s.length > 128) return false;
      const body = s.endsWith('*') ? s.slice(0, -1) : s;
      return [...body].every((c) => /[A-Za-z0-9:._/-]/.test(c)) && (body.length > 0 || s === '*');
    };
    fc.assert(
      fc.property(fc.string({ unit: fc.constantFrom('a', 'Z', '5', ':', '.', '_', '/', '-', '*', ' ', '\n', 'é'), maxLength: 12 }), (s) => {
        expect(isValidScope(s)).toBe(ref(s));
      }),
      { numRuns: 1000 },
    );
  });
});

describe('ScopeSet.grants', () => {
  it('grants exact scopes only exactly', () => {
    const set = new ScopeSet(['orders:read', 'billing']);
    expect(set.grants('orders:read')).toBe(true);
    expect(set.grants('billing')).toBe(true);
    expect(set.grants('orders')).toBe(false);
    expect(set.grants('orders:read:all')).toBe(false);
    expect(set.grants('orders:rea')).toBe(false);
    expect(set.grants('Orders:read')).toBe(false);
    expect(set.grants('billing:read')).toBe(false);
    expect(set.grants('')).toBe(false);
  });

  it('grants everything under a trailing wildcard, but not the bare stem', () => {
    const set = new ScopeSet(['orders:*']);
    expect(set.grants('orders:read')).toBe(true);
    expect(set.grants('orders:items:write')).toBe(true);
    expect(set.grants('orders:')).toBe(true);
    expect(set.grants('orders')).toBe(false);
    expect(set.grants('order')).toBe(false);
    expect(set.grants('ordersX')).toBe(false);
    expect(set.grants('billing:read')).toBe(false);
  });

  it('treats a wildcard without separator as a plain string prefix', () => {
    const set = new ScopeSet(['orders*']);
    expect(set.grants('orders')).toBe(true);
    expect(set.grants('orders-eu:read')).toBe(true);
    expect(set.grants('order')).toBe(false);
  });

  it('grants everything with * alone', () => {
    const set = new ScopeSet(['*']);
    for (const s of ['', 'a', 'orders:read', '*', 'admin', 'x'.repeat(500)]) expect(set.grants(s)).toBe(true);
  });

  it('compares required scopes literally: * in a required scope is not a wildcard', () => {
    const exact = new ScopeSet(['orders:read']);
    expect(exact.grants('orders:*')).toBe(false);
    expect(exact.grants('*')).toBe(false);
    const wildcard = new ScopeSet(['orders:*']);
    // The literal text "orders:*" starts with "orders:", so it is granted like any other scope.
    expect(wildcard.grants('orders:*')).toBe(true);
    expect(wildcard.grants('*')).toBe(false);
    const literal = new ScopeSet(['a']);
    expect(literal.grants('a*')).toBe(false);
  });

  it('grants nothing when empty', () => {
    const set = new ScopeSet([]);
    expect(set.grants('')).toBe(false);
    expect(set.grants('anything')).toBe(false);
    expect(set.firstMissing([])).toBeUndefined();
    expect(set.firstMissing(['a'])).toBe('a');
  });

  it('combines exact and wildcard scopes', () => {
    const set = new ScopeSet(['orders:read', 'billing:*', 'admin']);
    expect(set.grants('orders:read')).toBe(true);
    expect(set.grants('orders:write')).toBe(false);
    expect(set.grants('billing:refund')).toBe(true);
    expect(set.grants('admin')).toBe(true);
    expect(set.grants('admins')).toBe(false);
  });

  it('property: a granted exact scope always grants itself', () => {
    fc.assert(
      fc.property(fc.array(scopeBody(), { maxLength: 10 }), scopeBody(), (others, s) => {
        expect(new ScopeSet([...others, s]).grants(s)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('property: an exact scope grants nothing else', () => {
    fc.assert(
      fc.property(scopeBody(), anyText, (s, t) => {
        fc.pre(s !== t);
        expect(new ScopeSet([s]).grants(t)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });

  it('property: p* grants p + anything', () => {
    fc.assert(
      fc.property(scopeBody(), fc.string({ maxLength: 30 }), (p, rest) => {
        expect(new ScopeSet([`${p}*`]).grants(p + rest)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });

  it('property: p* grants only strings starting with p', () => {
    fc.assert(
      fc.property(scopeBody(), anyText, (p, t) => {
        expect(new ScopeSet([`${p}*`]).grants(t)).toBe(t.startsWith(p));
      }),
      { numRuns: 500 },
    );
  });

  it('property: a set grants exactly what one of its scopes grants alone', () => {
    const granted = fc.array(fc.oneof(scopeBody(4), scopeBody(3).map((s) => `${s}*`), fc.constant('*')), { maxLength: 6 });
    fc.assert(
      fc.property(granted, anyText, (scopes, t) => {
        const alone = scopes.some((s) => new ScopeSet([s]).grants(t));
        expect(new ScopeSet(scopes).grants(t)).toBe(alone);
      }),
      { numRuns: 500 },
    );
  });

  it('is not affected by later changes to the input array', () => {
    const input = ['orders:read'];
    const set = new ScopeSet(input);
    input.push('*');
    expect(set.grants('billing')).toBe(false);
  });
});

describe('ScopeSet.firstMissing', () => {
  it('returns the first required scope not granted, in order', () => {
    const set = new ScopeSet(['a', 'b:*']);
    expect(set.firstMissing(['a', 'b:x', 'c', 'd'])).toBe('c');
    expect(set.firstMissing(['d', 'c'])).toBe('d');
    expect(set.firstMissing(['a', 'b:x'])).toBeUndefined();
    expect(set.firstMissing([])).toBeUndefined();
  });

  it('property: undefined iff every required scope is granted', () => {
    fc.assert(
      fc.property(fc.array(scopeBody(3), { maxLength: 5 }), fc.array(scopeBody(3), { maxLength: 5 }), (granted, required) => {
        const set = new ScopeSet(granted);
        const missing = set.firstMissing(required);
        const expected = required.find((r) => !granted.includes(r));
        expect(missing).toBe(expected);
      }),
      { numRuns: 300 },
    );
  });
});

describe('sharedScopes', () => {
  it('gives equal lists one frozen copy and one ScopeSet that grants what a fresh one grants', () => {
    const a = sharedScopes(['orders:read', 'billing:*']);
    const b = sharedScopes(['orders:read', 'billing:*']);
    expect(b).toBe(a);
    expect(a.list).toEqual(['orders:read', 'billing:*']);
    expect(Object.isFrozen(a.list)).toBe(true);
    const fresh = new ScopeSet(['orders:read', 'billing:*']);
    for (const r of ['orders:read', 'orders:write', 'billing:x', 'billing']) expect(a.set.grants(r)).toBe(fresh.grants(r));
  });

  it('does not share between different lists, including ones that join to the same text', () => {
    expect(sharedScopes(['a'])).not.toBe(sharedScopes(['a', 'b']));
    expect(sharedScopes(['a', 'b']).list).not.toBe(sharedScopes(['b', 'a']).list);
    const odd = sharedScopes(['x\ny']);
    const two = sharedScopes(['x', 'y']);
    expect(odd.list).toEqual(['x\ny']);
    expect(two.list).toEqual(['x', 'y']);
    expect(odd.set.grants('x')).toBe(false);
    expect(two.set.grants('x')).toBe(true);
  });

  it('copies the list, so a caller changing its array changes nothing shared', () => {
    const mine = ['p:*'];
    const s = sharedScopes(mine);
    mine.push('q');
    expect(s.list).toEqual(['p:*']);
    expect(s.set.grants('q')).toBe(false);
  });

  it('property: the shared set grants exactly what a set of the same list grants', () => {
    const scope = fc.constantFrom('a', 'a:b', 'a:*', '*', 'b:c', 'b:*', 'c');
    fc.assert(
      fc.property(fc.array(scope, { maxLength: 4 }), fc.array(scope, { maxLength: 4 }), (granted, required) => {
        expect(sharedScopes(granted).set.firstMissing(required)).toBe(new ScopeSet(granted).firstMissing(required));
        expect(sharedScopes(granted).list).toEqual(granted);
      }),
      { numRuns: 300 },
    );
  });

  it('stays bounded: past 4096 distinct lists it starts over, and what it gave out still works', () => {
    const first = sharedScopes(['bound:0']);
    for (let i = 1; i <= 5000; i++) sharedScopes([`bound:${i}`]);
    expect(first.set.grants('bound:0')).toBe(true);
    expect(sharedScopes(['bound:0'])).not.toBe(first); // the table was cleared in between
  });
});
