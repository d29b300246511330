import fc from 'fast-check';
import { decodePageToken, encodePageToken } from '../../../src/app/page-token';
import { InvalidArgumentError } from '../../../src/domain/errors';
import { LIMITS } from '../../../src/domain/input-rules';

const ID = 'key_01JD6Z3M8Q4ZC2N1XW7V5TBR9A';
/** The filters string exactly as KeyAdmin.list builds it. */
const filters = (service: string, owner: string, state: string) => JSON.stringify([service, owner, state]);

function expectPageTokenError(fn: () => unknown): void {
  let caught: unknown;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  expect(caught).toBeInstanceOf(InvalidArgumentError);
  expect((caught as InvalidArgumentError).field).toBe('page_token');
}

const b64 = (s: string) => Buffer.from(s).toString('base64url');

describe('page tokens', () => {
  it('an empty token means the first page', () => {
    expect(decodePageToken('', filters('', '', ''))).toBeUndefined();
  });

  it('round-trips the cursor for the same filters', () => {
    const f = filters('orders', 'team-a', 'active');
    expect(decodePageToken(encodePageToken(ID, f), f)).toBe(ID);
  });

  it('is URL-safe base64 text (no plain id or filters inside)', () => {
    const f = filters('orders', 'team-a', '');
    const token = encodePageToken(ID, f);
    expect(token).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(token).not.toContain(ID);
    expect(token).not.toContain('orders');
  });

  it('property: round-trips any cursor and filters within the token length limit', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('', 'orders', 'a'.repeat(63)),
        fc.string({ unit: 'binary', maxLength: 128 }),
        fc.constantFrom('', 'active', 'disabled', 'revoked'),
        (service, owner, state) => {
          const f = filters(service, owner, state);
          const token = encodePageToken(ID, f);
          expect(token.length).toBeLessThanOrEqual(LIMITS.pageTokenLength);
          expect(decodePageToken(token, f)).toBe(ID);
        },
      ),
      { numRuns: 300 },
    );
  });

  // Every owner below passes checkText (at most 128 characters, no control characters), so
  // KeyAdmin.list accepts it; the token it hands out must be accepted back.
  it.each([
    ['ASCII', 'o'.repeat(128)],
    ['CJK', '漢'.repeat(128)],
    ['emoji', '😀'.repeat(64)],
    ['quotes', '"'.repeat(128)],
    ['backslashes', '\\'.repeat(128)],
    ['lone surrogates', '\ud800'.repeat(128)],
  ])('a token for the longest %s owner filter is accepted back', (_label, owner) => {
    const f = filters('s'.repeat(63), owner, 'disabled');
    const token = encodePageToken(ID, f);
    expect(token.length).toBeLessThanOrEqual(LIMITS.pageTokenLength);
    expect(decodePageToken(token, f)).toBe(ID);
  });

  it('refuses a well-formed token longer than the limit before decoding it', () => {
    const f = filters('', '', '');
    const token = encodePageToken('k'.repeat(LIMITS.pageTokenLength), f);
    expect(token.length).toBeGreaterThan(LIMITS.pageTokenLength);
    expectPageTokenError(() => decodePageToken(token, f));
    const fits = encodePageToken('k'.repeat(LIMITS.pageTokenLength / 2), f);
    expect(fits.length).toBeLessThanOrEqual(LIMITS.pageTokenLength);
    expect(decodePageToken(fits, f)).toBe('k'.repeat(LIMITS.pageTokenLength / 2));
  });

  it.each([
    ['service', filters('billing', 'team-a', '')],
    ['owner', filters('orders', 'team-b', '')],
    ['state', filters('orders', 'team-a', 'revoked')],
    ['no filters', filters('', '', '')],
  ])('is refused when the %s filter changed', (_label, other) => {
    const token = encodePageToken(ID, filters('orders', 'team-a', ''));
    expectPageTokenError(() => decodePageToken(token, other));
  });

  it('distinguishes owners that differ only in lone surrogates', () => {
    const a = filters('orders', '\ud800', '');
    const b = filters('orders', '\ud801', '');
    expectPageTokenError(() => decodePageToken(encodePageToken(ID, a), b));
  });

  it.each([
    ['not base64 JSON', 'not-a-token'],
    ['punctuation', '!!!!'],
    ['JSON number', b64('123')],
    ['JSON null', b64('null')],
    ['JSON string', b64('"key"')],
    ['JSON array', b64('[1,"a","f"]')],
    ['wrong version', b64(JSON.stringify({ v: 2, a: ID, f: '["","",""]' }))],
    ['missing version', b64(JSON.stringify({ a: ID, f: '["","",""]' }))],
    ['cursor not a string', b64(JSON.stringify({ v: 1, a: 5, f: '["","",""]' }))],
    ['filters not a string', b64(JSON.stringify({ v: 1, a: ID, f: ['', '', ''] }))],
    ['truncated token', encodePageToken(ID, filters('', '', '')).slice(0, 20)],
    ['too long', 'A'.repeat(LIMITS.pageTokenLength + 1)],
  ])('refuses %s', (_label, token) => {
    expectPageTokenError(() => decodePageToken(token, filters('', '', '')));
  });

  it('property: arbitrary text is refused with InvalidArgumentError(page_token), never another error', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', minLength: 1, maxLength: 600 }), (token) => {
        expectPageTokenError(() => decodePageToken(token, filters('', '', '')));
      }),
      { numRuns: 500 },
    );
  });
});
