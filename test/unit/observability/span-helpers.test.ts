import { context, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { ValidationCache } from '../../../src/adapters/cache/validation-cache';
import { ManualClock } from '../../../src/domain/clock';
import { startPublishSpan, withConsumeSpan } from '../../../src/observability/messaging-spans';
import {
  contextFromTraceparent,
  setTracer,
  traceparentOf,
  traceparentOfActiveSpan,
  tracingEnabled,
  withSpan,
} from '../../../src/observability/span-helpers';
import type { WireEvent } from '../../../src/ports/event-transport';
import { makeRecord } from '../helpers/records';
import { hexOf, parentOf, startTestTracing } from './tracing-harness';

const TP = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('span helpers with tracing off', () => {
  it('run the function directly and give no traceparent', () => {
    expect(tracingEnabled()).toBe(false);
    expect(withSpan('x', undefined, (span) => (span === undefined ? 'direct' : 'span'))).toBe('direct');
    expect(traceparentOfActiveSpan()).toBeUndefined();
    const event = { id: 'evt_1', type: 'key.revoked', traceparent: TP } as WireEvent;
    const p = startPublishSpan('keyward.events.s.key.revoked', event);
    expect(p.traceparent).toBe(TP); // passed through unchanged
    p.end();
    expect(withConsumeSpan('s', event, undefined, () => 42)).toBe(42);
  });
});

describe('contextFromTraceparent', () => {
  it('reads a valid traceparent as a remote parent', () => {
    const ctx = contextFromTraceparent(TP)!;
    const sc = trace.getSpanContext(ctx)!;
    expect(sc).toEqual({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1, isRemote: true });
  });

  it.each([
    undefined,
    '',
    'garbage',
    '00-00000000000000000000000000000000-b7ad6b7169203331-01', // zero trace id
    '00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01', // zero span id
    'ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', // forbidden version
    '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra', // extra field in version 00
    '00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01', // upper case
  ])('rejects %p', (tp) => {
    expect(contextFromTraceparent(tp)).toBeUndefined();
  });

  it('accepts a future version with extra fields', () => {
    expect(contextFromTraceparent('01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-more')).toBeDefined();
  });
});

describe('span helpers with tracing on', () => {
  let t: ReturnType<typeof startTestTracing>;
  beforeEach(() => {
    t = startTestTracing();
  });
  afterEach(async () => {
    await t.stop();
  });

  /** Runs `fn` under a recording root span, ended when `fn` (or its promise) is done. */
  const inRoot = <T>(fn: () => T): T => {
    const root = trace.getTracer('test').startSpan('root');
    const result = context.with(trace.setSpan(ROOT_CONTEXT, root), fn);
    if (result instanceof Promise) return result.finally(() => root.end()) as T;
    root.end();
    return result;
  };

  it('makes no span without a recording parent (never a root of its own)', () => {
    expect(withSpan('step', undefined, (span) => span)).toBeUndefined();
    expect(t.spans()).toHaveLength(0);
  });

  it('makes a child span of the active span, ended when a promise settles, failed with the error name only', async () => {
    await inRoot(async () => {
      expect(withSpan('sync.step', { a: 1 }, () => 'v')).toBe('v');
      await withSpan('async.step', undefined, async () => 'w');
      await expect(withSpan('failing.step', undefined, async () => Promise.reject(new TypeError('secret detail')))).rejects.toThrow(TypeError);
      expect(() => withSpan('throwing.step', undefined, () => {
        throw new RangeError('secret detail');
      })).toThrow(RangeError);
    });
    const spans = t.spans();
    const root = spans.find((s) => s.name === 'root')!;
    for (const name of ['sync.step', 'async.step', 'failing.step', 'throwing.step']) {
      const s = spans.find((x) => x.name === name)!;
      expect(parentOf(s)).toBe(hexOf(root));
      expect(s.kind).toBe(SpanKind.INTERNAL);
    }
    expect(spans.find((s) => s.name === 'sync.step')!.attributes).toEqual({ a: 1 });
    const failed = spans.find((s) => s.name === 'failing.step')!;
    expect(failed.status).toEqual({ code: SpanStatusCode.ERROR, message: 'TypeError' });
    expect(failed.attributes['error.type']).toBe('TypeError');
    expect(JSON.stringify(spans.map((s) => [s.attributes, s.status, s.events]))).not.toContain('secret detail');
  });

  it('gives the active span as a W3C traceparent', () => {
    inRoot(() => {
      const sc = trace.getActiveSpan()!.spanContext();
      expect(traceparentOfActiveSpan()).toBe(`00-${sc.traceId}-${sc.spanId}-01`);
    });
  });

  it('times the cache: a miss is a lookup span with a store read below it, a hit an attribute of the caller\'s span', async () => {
    const clock = new ManualClock(1_000);
    const rec = makeRecord({ id: 'key_01', hash: 'h1' });
    const cache = new ValidationCache({
      load: async (hash) => (hash === 'h1' ? rec : undefined),
      clock,
      maxEntries: 10,
      ttlMs: 1000,
      negativeTtlMs: 1000,
      maxStalenessMs: 0,
    });
    await inRoot(async () => {
      await cache.lookup('h1'); // miss
    });
    inRoot(() => cache.lookup('h1')); // hit, synchronous
    const spans = t.spans();
    const [missRoot, hitRoot] = spans.filter((s) => s.name === 'root');
    const lookups = spans.filter((s) => s.name === 'keyward.cache.lookup');
    expect(lookups).toHaveLength(1);
    expect(lookups[0].attributes['keyward.cache.result']).toBe('miss');
    expect(parentOf(lookups[0])).toBe(hexOf(missRoot));
    const read = spans.find((s) => s.name === 'keyward.store.read')!;
    expect(parentOf(read)).toBe(hexOf(lookups[0]));
    expect(hitRoot.attributes).toEqual({ 'keyward.cache.result': 'hit', 'keyward.key.id': 'key_01' });
    expect(spans.filter((s) => parentOf(s) === hexOf(hitRoot))).toEqual([]);
  });

  it('links publish and consume spans through the traceparent header', async () => {
    const event = { id: 'evt_1', type: 'key.revoked', keyId: 'key_01', service: 'orders', traceparent: TP } as WireEvent;
    const subject = 'keyward.events.orders.key.revoked';
    const publish = startPublishSpan(subject, event);
    publish.end();
    const consumed = { ...event, traceparent: publish.traceparent };
    let activeInHandler: string | undefined;
    withConsumeSpan(subject, consumed, undefined, () => {
      activeInHandler = trace.getActiveSpan()?.spanContext().spanId;
    });
    await withConsumeSpan(subject, consumed, 'keyward-notifier', async () => undefined);
    const [pub, c1, c2] = t.spans();
    expect(pub.name).toBe(`publish ${subject}`);
    expect(pub.kind).toBe(SpanKind.PRODUCER);
    expect(pub.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
    expect(parentOf(pub)).toBe('b7ad6b7169203331');
    expect(publish.traceparent).toBe(`00-${pub.spanContext().traceId}-${pub.spanContext().spanId}-01`);
    for (const c of [c1, c2]) {
      expect(c.name).toBe(`process ${subject}`);
      expect(c.kind).toBe(SpanKind.CONSUMER);
      expect(c.spanContext().traceId).toBe(pub.spanContext().traceId);
      expect(parentOf(c)).toBe(hexOf(pub));
      expect(c.attributes['messaging.message.id']).toBe('evt_1');
      expect(c.attributes['keyward.key.id']).toBe('key_01');
    }
    expect(activeInHandler).toBe(hexOf(c1));
    expect(c2.attributes['messaging.consumer.group.name']).toBe('keyward-notifier');
  });

  it('marks a failed publish', () => {
    const p = startPublishSpan('s', { id: 'e', type: 'key.created' } as WireEvent);
    p.end(new Error('nats down'));
    expect(t.spans()[0].status).toEqual({ code: SpanStatusCode.ERROR, message: 'Error' });
  });
});

describe('span helpers under an unsampled parent', () => {
  it('make no child spans and still propagate the (unsampled) trace', async () => {
    const t = startTestTracing({ sampled: false });
    try {
      const root = trace.getTracer('test').startSpan('root');
      context.with(trace.setSpan(ROOT_CONTEXT, root), () => {
        expect(withSpan('step', undefined, (span) => span)).toBeUndefined();
        expect(traceparentOfActiveSpan()).toMatch(/-00$/);
      });
      root.end();
      expect(t.spans()).toHaveLength(0);
    } finally {
      await t.stop();
    }
  });

  it('keep the unsampled trace on async work (keyward\'s context manager tracks it)', async () => {
    const t = startTestTracing({ sampled: false, syncFirst: true });
    try {
      const root = trace.getTracer('test').startSpan('root');
      const after = await context.with(trace.setSpan(ROOT_CONTEXT, root), () =>
        withSpan('step', undefined, async () => {
          await new Promise((resolve) => setTimeout(resolve, 1));
          return traceparentOfActiveSpan();
        }),
      );
      root.end();
      expect(after).toBe(traceparentOf(root));
      expect(after).toMatch(/-00$/);
    } finally {
      await t.stop();
    }
  });

  it('setTracer(undefined) switches the helpers off', () => {
    setTracer(undefined);
    expect(tracingEnabled()).toBe(false);
  });
});
