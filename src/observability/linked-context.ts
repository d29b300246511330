import { INVALID_SPAN_CONTEXT, ROOT_CONTEXT, trace, type Context, type Span } from '@opentelemetry/api';

/*
 * A Context that is one value on top of its parent: what a server span's context needs, made with
 * one small object.
 *
 * Why not the API's own contexts: `trace.setSpan(ROOT_CONTEXT, span)` builds a BaseContext, which
 * copies its parent's Map into a new Map and makes three closures, once per traced call. Measured
 * on cached ValidateKey at sampling ratio 1.0, every call's span then survived scavenges until it
 * was promoted: ~280 KB of each scavenge went to the old generation, ~47 KB with this context (as
 * with tracing off; docs/BENCHMARKS.md, Session 6). A chain reads a key by walking to the first
 * node that holds it; server contexts are one node on the caller's (usually empty) context, and
 * the steps below add one node each.
 */

/** The key `trace.setSpan` stores a span under; the API does not export it, so it is read off one call. */
const SPAN_KEY: symbol = (() => {
  let captured: symbol | undefined;
  const probe: Context = {
    getValue: () => undefined,
    setValue(key) {
      captured = key;
      return probe;
    },
    deleteValue: () => probe,
  };
  trace.setSpan(probe, trace.wrapSpanContext(INVALID_SPAN_CONTEXT));
  if (captured === undefined) throw new Error('@opentelemetry/api: trace.setSpan did not call Context.setValue');
  return captured;
})();

export class LinkedContext implements Context {
  constructor(
    private readonly parent: Context,
    private readonly key: symbol,
    /** undefined: the key was deleted (a lookup stops here and finds nothing). */
    private readonly value: unknown,
  ) {}

  getValue(key: symbol): unknown {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    let node: Context = this;
    while (node instanceof LinkedContext) {
      if (node.key === key) return node.value;
      node = node.parent;
    }
    return node.getValue(key);
  }

  setValue(key: symbol, value: unknown): Context {
    return new LinkedContext(this, key, value);
  }

  deleteValue(key: symbol): Context {
    return new LinkedContext(this, key, undefined);
  }
}

/**
 * An empty context whose derived contexts are LinkedContexts: the base to extract a caller's trace
 * context onto (propagation.extract adds its values with setValue), so that path makes no Map either.
 */
export const LINKED_ROOT: Context = new LinkedContext(ROOT_CONTEXT, Symbol('keyward.linkedRoot'), undefined);

/** `parent` with `span` as its active span: what `trace.setSpan(parent, span)` gives, in one object. */
export function contextWithSpan(parent: Context, span: Span): Context {
  return new LinkedContext(parent, SPAN_KEY, span);
}
