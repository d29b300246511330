/*
 * Secret redaction for logs (and span attributes): whatever field a secret hides in, a message
 * string, an error message or stack, a nested object, it is replaced before anything is written.
 *
 * One precompiled regular expression, run over strings only (after a first pass for the configured
 * literal secrets, when there are any), finds:
 *
 * - keyward keys, generously: any `<lowercase/digit run>_<30 or more base62 characters>` (a real
 *   key is `<prefix>_<33 random><6 checksum>`, see domain/key-format.ts). The last prefix part and
 *   the first 4 characters after it stay, the display hint keyward shows anyway:
 *   `sk_live_7Gq2…[redacted]`;
 * - bearer credentials: `Bearer <anything up to a space or quote>` becomes `Bearer [redacted]`;
 * - development admin tokens keyward generates (`kwdev_<base64url>`);
 * - the configured secrets (the bootstrap admin token), verbatim and in their JSON-escaped form,
 *   so that redacting a finished JSON log line catches them too.
 *
 * The logger runs `redactString` over each finished JSON line (pino's `streamWrite` hook): keys
 * and bearer tokens are never altered by JSON escaping (base62, `_`), so one pass over the line
 * covers the message, every field, serialized errors and child bindings at once.
 */

export const REDACTED = '[redacted]';

/** Shorter configured secrets are ignored: they would redact ordinary words. */
const MIN_SECRET_LENGTH = 8;
/** Objects nested deeper than this are not walked (logged values are shallow; cycles are cut too). */
const MAX_DEPTH = 16;

// one lowercase letter or digit before the `_` is enough to tell a key (and keeps the scan linear:
// a longer prefix run would be retried from every letter of every word)
const KEY = '([a-z0-9])_([A-Za-z0-9]{4})[A-Za-z0-9]{26,}';
const BEARER = '([Bb][Ee][Aa][Rr][Ee][Rr])[ \\t]+[^\\s"\'\\\\,;]+';
const DEV_TOKEN = '(kwdev_)[A-Za-z0-9_-]{16,}';
/** Keys, bearer credentials, development tokens; the group order is what `replace` below relies on. */
const PATTERN = new RegExp(`${DEV_TOKEN}|${BEARER}|${KEY}`, 'g');

export interface RedactorOptions {
  /** Literal secrets to remove wherever they appear (e.g. the bootstrap admin token). */
  secrets?: readonly (string | undefined)[];
}

export interface Redactor {
  /** The text with every secret replaced; the same string when there was none. */
  redactString(text: string): string;
  /**
   * A copy of `value` with every string in it redacted (objects, arrays, errors with their
   * message, stack and cause); the value itself when nothing needed redacting.
   */
  redact<T>(value: T): T;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The configured literal secrets as one expression (verbatim and JSON-escaped), or undefined. */
export function secretsPattern(secrets: readonly (string | undefined)[] = []): RegExp | undefined {
  const literal = new Set<string>();
  for (const s of secrets) {
    if (s === undefined || s.length < MIN_SECRET_LENGTH) continue;
    literal.add(s);
    literal.add(JSON.stringify(s).slice(1, -1));
  }
  if (literal.size === 0) return undefined;
  // longest first, so a secret that contains another is removed whole
  const alternatives = [...literal].sort((a, b) => b.length - a.length).map(escapeRegExp);
  return new RegExp(alternatives.join('|'), 'g');
}

export function createRedactor(opts: RedactorOptions = {}): Redactor {
  const secrets = secretsPattern(opts.secrets);
  const replace = (
    _match: string,
    dev: string | undefined,
    bearer: string | undefined,
    last: string | undefined,
    head: string | undefined,
  ): string => {
    if (dev !== undefined) return `${dev}${REDACTED}`;
    if (bearer !== undefined) return `${bearer} ${REDACTED}`;
    return `${last}_${head}…${REDACTED}`;
  };

  const redactString = (text: string): string => {
    // secrets first, whole: a key-like run must not take a bite out of one and leave the rest
    const t = secrets === undefined ? text : text.replace(secrets, REDACTED);
    return t.replace(PATTERN, replace);
  };

  const walk = (value: unknown, depth: number, seen: WeakSet<object>): unknown => {
    if (typeof value === 'string') return redactString(value);
    if (typeof value !== 'object' || value === null || depth > MAX_DEPTH) return value;
    if (seen.has(value)) return value;
    if (ArrayBuffer.isView(value) || value instanceof Date || value instanceof RegExp) return value;
    seen.add(value);
    try {
      if (Array.isArray(value)) {
        let copy: unknown[] | undefined;
        for (let i = 0; i < value.length; i++) {
          const r = walk(value[i], depth + 1, seen);
          if (r !== value[i]) (copy ??= value.slice())[i] = r;
        }
        return copy ?? value;
      }
      if (value instanceof Error) return redactError(value, depth, seen);
      if (value instanceof Map) {
        let changed = false;
        const entries = [...value].map(([k, v]) => {
          const r = walk(v, depth + 1, seen);
          if (r !== v) changed = true;
          return [k, r] as const;
        });
        return changed ? new Map(entries) : value;
      }
      let copy: Record<string, unknown> | undefined;
      const obj = value as Record<string, unknown>;
      for (const k of Object.keys(obj)) {
        const v = obj[k];
        const r = walk(v, depth + 1, seen);
        if (r !== v) (copy ??= { ...obj })[k] = r;
      }
      return copy ?? value;
    } finally {
      seen.delete(value);
    }
  };

  /** A clone of the error (same prototype, so serializers still see an Error) with its strings redacted. */
  const redactError = (err: Error, depth: number, seen: WeakSet<object>): Error => {
    const props: [string, unknown, boolean][] = [];
    let changed = false;
    for (const k of Object.getOwnPropertyNames(err)) {
      const d = Object.getOwnPropertyDescriptor(err, k)!;
      let v: unknown;
      try {
        v = 'value' in d ? d.value : d.get?.call(err);
      } catch {
        continue; // a throwing getter: leave the property out
      }
      const r = walk(v, depth + 1, seen);
      if (r !== v || !('value' in d)) changed = true;
      props.push([k, r, d.enumerable === true]);
    }
    if (!changed) return err;
    const copy = Object.create(Object.getPrototypeOf(err)) as Error;
    for (const [k, v, enumerable] of props) {
      Object.defineProperty(copy, k, { value: v, enumerable, writable: true, configurable: true });
    }
    return copy;
  };

  return {
    redactString,
    redact: <T>(value: T): T => walk(value, 0, new WeakSet()) as T,
  };
}
