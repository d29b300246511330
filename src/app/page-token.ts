import { InvalidArgumentError } from '../domain/errors';
import { LIMITS } from '../domain/input-rules';

/**
 * Opaque list cursors: base64url of the last id returned plus the filters of the listing, so a
 * token cannot be replayed against other filters (which would silently skip or repeat keys).
 */
interface TokenBody {
  v: 1;
  a: string;
  f: string;
}

export function encodePageToken(after: string, filters: string): string {
  const body: TokenBody = { v: 1, a: after, f: filters };
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

/** Returns the `after` id; `InvalidArgumentError(page_token)` when it is not ours or filters changed. */
export function decodePageToken(token: string, filters: string): string | undefined {
  if (token === '') return undefined;
  if (token.length > LIMITS.pageTokenLength) throw new InvalidArgumentError('page_token', 'is not a token from a previous page');
  let body: Partial<TokenBody>;
  try {
    body = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    throw new InvalidArgumentError('page_token', 'is not a token from a previous page');
  }
  if (body?.v !== 1 || typeof body.a !== 'string' || typeof body.f !== 'string') {
    throw new InvalidArgumentError('page_token', 'is not a token from a previous page');
  }
  if (body.f !== filters) {
    throw new InvalidArgumentError('page_token', 'was issued for other filters (service, owner, state); keep them unchanged between pages');
  }
  return body.a;
}
