import { Writable } from 'node:stream';
import fc from 'fast-check';
import { generateKey, parseKey, RANDOM_LENGTH } from '../../../src/domain/key-format';
import { createLogger } from '../../../src/logger';
import { createRedactor, REDACTED } from '../../../src/observability/log-redaction';
import { seededBytes } from '../helpers/bytes';

const ADMIN_TOKEN = 'root-token-"quoted"-\\back\\-0123456789abcdefghij';

/** Every 8-character window of the key's secret part past the 4 characters of the display hint. */
function secretWindows(key: string): string[] {
  const sep = key.lastIndexOf('_');
  const body = key.slice(sep + 1 + 4);
  const out: string[] = [];
  for (let i = 0; i + 8 <= body.length; i++) out.push(body.slice(i, i + 8));
  return out;
}

function leaks(text: string, key: string): string | undefined {
  if (text.includes(key)) return 'the whole key';
  return secretWindows(key).find((w) => text.includes(w));
}

const prefixArb = fc.stringMatching(/^[a-z][a-z0-9]{0,5}(_[a-z0-9]{1,5}){0,3}$/);
const keyArb = fc.tuple(prefixArb, fc.integer()).map(([prefix, seed]) => generateKey(prefix, seededBytes(seed)));
const textArb = fc.string({ maxLength: 40 });

/** Puts `leaf` somewhere inside a random structure of objects and arrays. */
function embed(leaf: unknown, path: (string | number)[]): unknown {
  return path.reduceRight<unknown>((inner, step) => {
    if (typeof step === 'number') {
      const arr: unknown[] = Array.from({ length: step % 4 }, (_, i) => `filler-${i}`);
      arr.push(inner);
      return arr;
    }
    return { other: 1, [step]: inner };
  }, leaf);
}
const pathArb = fc.array(fc.oneof(fc.string({ minLength: 1, maxLength: 8 }), fc.nat(10)), { maxLength: 5 });

function memoryLogger(level = 'trace', secrets: (string | undefined)[] = []) {
  const lines: string[] = [];
  let pending = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      pending += chunk.toString('utf8');
      const parts = pending.split('\n');
      pending = parts.pop()!;
      lines.push(...parts);
      cb();
    },
  });
  return { logger: createLogger(level, stream, { secrets }), lines };
}

describe('redactString', () => {
  const r = createRedactor({ secrets: [ADMIN_TOKEN] });

  it('keeps the display hint of a key and removes the rest', () => {
    const key = generateKey('sk_live', seededBytes(7));
    const hint = `sk_live_${parseKey(key)!.random.slice(0, 4)}`;
    expect(r.redactString(`presented ${key} twice: ${key}.`)).toBe(`presented ${hint}…${REDACTED} twice: ${hint}…${REDACTED}.`);
  });

  it('redacts keys glued to other text and keys with digit prefix parts', () => {
    for (const prefix of ['sk', 'sk_2024', 'pk1_test_x9']) {
      const key = generateKey(prefix, seededBytes(3));
      for (const text of [`XY${key}`, `abc123${key}!`, `${key}tail`, `"key":"${key}"`, `\n${key}\t`]) {
        expect(leaks(r.redactString(text), key)).toBeUndefined();
      }
    }
  });

  it('is generous: any <lowercase>_<30+ base62> token goes, ids of 26 characters stay', () => {
    expect(r.redactString('x tok_ABCDEFGHIJKLMNOPQRSTUVWXYZabcd y')).toBe(`x tok_ABCD…${REDACTED} y`);
    expect(r.redactString('key_01J9ZQ3M4N5P6Q7R8S9T0V1W2X')).toBe('key_01J9ZQ3M4N5P6Q7R8S9T0V1W2X');
    expect(r.redactString('evt_01J9ZQ3M4N5P6Q7R8S9T0V1W2X and a hint sk_live_7Gq2')).toBe('evt_01J9ZQ3M4N5P6Q7R8S9T0V1W2X and a hint sk_live_7Gq2');
  });

  it('redacts bearer credentials whatever they are', () => {
    expect(r.redactString('authorization: Bearer abc.def-ghi/jkl')).toBe(`authorization: Bearer ${REDACTED}`);
    expect(r.redactString('"bearer   xyz" and BEARER\tq')).toBe(`"bearer ${REDACTED}" and BEARER ${REDACTED}`);
  });

  it('redacts the configured secrets verbatim and JSON-escaped, and development tokens', () => {
    expect(r.redactString(`token=${ADMIN_TOKEN};`)).toBe(`token=${REDACTED};`);
    expect(r.redactString(JSON.stringify({ t: ADMIN_TOKEN }))).toBe(`{"t":"${REDACTED}"}`);
    expect(r.redactString('wrote kwdev_aB3-_x9QzLmN0pQrStUvWxYz01234567890abcdEF to disk')).toBe(`wrote kwdev_${REDACTED} to disk`);
  });

  it('returns the same string when there is nothing to redact, and is idempotent', () => {
    const text = 'nothing secret here: key_01J9ZQ3M4N5P6Q7R8S9T0V1W2X, sk_live_7Gq2';
    expect(r.redactString(text)).toBe(text);
    const once = r.redactString(`Bearer x ${generateKey('sk', seededBytes(1))} ${ADMIN_TOKEN}`);
    expect(r.redactString(once)).toBe(once);
  });

  it('ignores configured secrets too short to be secrets', () => {
    expect(createRedactor({ secrets: ['abc', undefined] }).redactString('abcabc')).toBe('abcabc');
  });

  it('property: a key anywhere in any string is redacted', () => {
    fc.assert(
      fc.property(keyArb, textArb, textArb, (key, before, after) => {
        expect(leaks(r.redactString(before + key + after), key)).toBeUndefined();
      }),
      { numRuns: 500 },
    );
  });

  it('property: an admin token anywhere in any string is redacted', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 32, maxLength: 64 }), textArb, textArb, (token, before, after) => {
        const out = createRedactor({ secrets: [token] }).redactString(`${before} ${token} ${after}`);
        expect(out.includes(token)).toBe(false);
      }),
      { numRuns: 300 },
    );
  });
});

describe('redact (values)', () => {
  const r = createRedactor();

  it('property: a key anywhere in any object, array or error is redacted, and the input is not changed', () => {
    fc.assert(
      fc.property(keyArb, textArb, pathArb, (key, text, path) => {
        const value = embed(`${text}${key}`, path);
        const snapshot = JSON.stringify(value);
        const out = r.redact(value);
        expect(leaks(JSON.stringify(out), key)).toBeUndefined();
        expect(JSON.stringify(value)).toBe(snapshot);
      }),
      { numRuns: 300 },
    );
  });

  it('clones errors (message, stack, cause, own fields) and keeps their class', () => {
    const key = generateKey('sk_test', seededBytes(11));
    class StoreError extends Error {
      constructor(
        message: string,
        readonly detail: string,
        options?: { cause?: unknown },
      ) {
        super(message, options);
        this.name = 'StoreError';
      }
    }
    const err = new StoreError(`lookup of ${key} failed`, `detail ${key}`, { cause: new Error(`inner ${key}`) });
    const out = r.redact(err);
    expect(out).not.toBe(err);
    expect(out).toBeInstanceOf(StoreError);
    expect(out.name).toBe('StoreError');
    for (const text of [out.message, out.stack ?? '', out.detail, String((out.cause as Error).message), (out.cause as Error).stack ?? '']) {
      expect(leaks(text, key)).toBeUndefined();
    }
    expect(err.message).toContain(key); // the original is left alone
  });

  it('returns the value itself when nothing changes, and survives cycles', () => {
    const o: Record<string, unknown> = { a: 'plain', n: 1, list: ['x'], when: new Date(0) };
    o.self = o;
    expect(r.redact(o)).toBe(o);
  });
});

describe('the logger', () => {
  it('property: no key reaches a log line, whatever field, message or error it hides in', () => {
    fc.assert(
      fc.property(keyArb, textArb, pathArb, fc.integer({ min: 0, max: 3 }), (key, text, path, how) => {
        const { logger, lines } = memoryLogger('trace');
        const leaf = `${text}${key}`;
        if (how === 0) logger.info(embed(leaf, path) as object, 'structured');
        else if (how === 1) logger.warn({ err: new Error(leaf) }, 'failed');
        else if (how === 2) logger.error(`message with ${leaf}`);
        else logger.debug({ nested: { deeper: [leaf] } }, 'format %s and %j', leaf, { v: leaf });
        logger.flush();
        expect(lines.length).toBeGreaterThan(0);
        for (const line of lines) expect(leaks(line, key)).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });

  it('removes bearer tokens and the configured admin token from messages and fields', () => {
    const { logger, lines } = memoryLogger('info', [ADMIN_TOKEN]);
    logger.info({ header: `Bearer ${ADMIN_TOKEN}`, token: ADMIN_TOKEN, nested: { authorization: 'Bearer abc' } }, `got ${ADMIN_TOKEN}`);
    logger.info({ err: new Error(`auth failed for Bearer sk_${'A'.repeat(RANDOM_LENGTH + 6)}`) }, 'admin call failed');
    logger.flush();
    const text = lines.join('\n');
    expect(text).not.toContain(ADMIN_TOKEN);
    expect(text).not.toContain(JSON.stringify(ADMIN_TOKEN).slice(1, -1));
    expect(text).not.toContain('A'.repeat(20));
    expect(text).not.toContain('abc');
    for (const line of lines) expect(() => JSON.parse(line)).not.toThrow();
  });
});
