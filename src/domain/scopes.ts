/**
 * Scope rules.
 * - A scope is 1 to 128 characters of `[A-Za-z0-9:._/-]`, optionally ending in `*`.
 * - A granted scope without `*` matches exactly that required scope.
 * - A granted scope ending in `*` matches every required scope that starts with the part
 *   before the `*`: `orders:*` matches `orders:read` and `orders:items:write`, not `orders`;
 *   `*` alone matches everything.
 * - Required scopes are compared literally; a `*` in a required scope is not a wildcard.
 */
export const SCOPE_PATTERN = /^[A-Za-z0-9:._/-]+\*?$|^\*$/;
export const MAX_SCOPE_LENGTH = 128;

export function isValidScope(scope: string): boolean {
  return scope.length > 0 && scope.length <= MAX_SCOPE_LENGTH && SCOPE_PATTERN.test(scope);
}

/** A set of granted scopes prepared for fast matching (exact lookups, then prefix checks). */
export class ScopeSet {
  private readonly exact: Set<string>;
  private readonly prefixes: string[];

  constructor(granted: readonly string[]) {
    this.exact = new Set();
    this.prefixes = [];
    for (const s of granted) {
      if (s.endsWith('*')) this.prefixes.push(s.slice(0, -1));
      else this.exact.add(s);
    }
  }

  grants(required: string): boolean {
    if (this.exact.has(required)) return true;
    for (const p of this.prefixes) if (required.startsWith(p)) return true;
    return false;
  }

  /** The first required scope not granted, or `undefined` when all are granted. */
  firstMissing(required: readonly string[]): string | undefined {
    for (const r of required) if (!this.grants(r)) return r;
    return undefined;
  }
}

/** A scope list and its ScopeSet, shared by every record that grants exactly that list. */
export interface SharedScopes {
  /** Frozen: shared by many records. */
  readonly list: readonly string[];
  readonly set: ScopeSet;
}

/** Distinct lists kept; past it the table starts over (lists already handed out stay valid). */
const MAX_SHARED_LISTS = 4096;
const sharedLists = new Map<string, SharedScopes>();

/**
 * The shared form of a scope list. Thousands of keys usually grant a handful of distinct lists,
 * and a ScopeSet per cached key (a Set plus an array, ~420 B) was the largest part of the
 * validation cache's memory per key. Both are immutable, so sharing them changes no answer.
 */
export function sharedScopes(scopes: readonly string[]): SharedScopes {
  const id = scopes.join('\n');
  const found = sharedLists.get(id);
  // scopes hold no newline, but an odd list must not borrow another's set: compare to be sure
  if (found !== undefined && sameList(found.list, scopes)) return found;
  const made: SharedScopes = { list: Object.freeze([...scopes]), set: new ScopeSet(scopes) };
  if (found !== undefined) return made;
  if (sharedLists.size >= MAX_SHARED_LISTS) sharedLists.clear();
  sharedLists.set(id, made);
  return made;
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
