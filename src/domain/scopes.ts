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
