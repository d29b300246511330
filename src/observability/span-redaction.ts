import type { Attributes, AttributeValue } from '@opentelemetry/api';
import type { ReadableSpan } from '@opentelemetry/sdk-trace-base';
import type { Redactor } from './log-redaction';

/*
 * The last line of defence for traces: before spans leave the process, every string they carry
 * (name, attributes, event and link attributes, status message) goes through the same redaction
 * as log lines. keyward's own spans carry ids and hints only, and the gRPC server spans record no
 * metadata; this catches what a library might add (an error message quoting its input, say). It
 * runs in the export worker (span-export-worker.ts), off the request path, and rewrites only
 * strings that change.
 */

/** Rewrites, in place, the strings of an ended span that hold a secret. */
export function redactSpan(span: ReadableSpan, r: Redactor): void {
  const mutable = span as { -readonly [K in keyof ReadableSpan]: ReadableSpan[K] };
  const name = r.redactString(span.name);
  if (name !== span.name) {
    try {
      mutable.name = name;
    } catch {
      // a read-only name: nothing keyward names its spans after carries a secret
    }
  }
  redactAttributes(span.attributes, r);
  for (const e of span.events) if (e.attributes) redactAttributes(e.attributes, r);
  for (const l of span.links) if (l.attributes) redactAttributes(l.attributes, r);
  const message = span.status.message;
  if (message !== undefined) {
    const m = r.redactString(message);
    if (m !== message) mutable.status = { ...span.status, message: m };
  }
}

/** Nothing shorter can hold a secret the redactor knows (`Bearer x` is the shortest match). */
const MIN_SECRET_TEXT = 8;

function redactAttributes(attrs: Attributes, r: Redactor): void {
  const mutable = attrs as Record<string, AttributeValue | undefined>;
  for (const k of Object.keys(attrs)) {
    const v = attrs[k];
    if (typeof v === 'string') {
      if (v.length < MIN_SECRET_TEXT) continue;
      const x = r.redactString(v);
      if (x !== v) mutable[k] = x;
    } else if (Array.isArray(v) && v.some((e) => typeof e === 'string')) {
      const x = (v as unknown[]).map((e) => (typeof e === 'string' ? r.redactString(e) : e));
      if (x.some((e, i) => e !== v[i])) mutable[k] = x as AttributeValue;
    }
  }
}
