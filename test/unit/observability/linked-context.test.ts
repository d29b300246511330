import { createContextKey, propagation, ROOT_CONTEXT, trace, type Context } from '@opentelemetry/api';
import { CompositePropagator, W3CBaggagePropagator, W3CTraceContextPropagator } from '@opentelemetry/core';
import fc from 'fast-check';
import { contextWithSpan, LINKED_ROOT, LinkedContext } from '../../../src/observability/linked-context';

const span = trace.wrapSpanContext({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceFlags: 1 });

const cleanups: (() => void)[] = [];
const afterDone = (f: () => void) => cleanups.push(f);
afterEach(() => cleanups.splice(0).forEach((f) => f()));

describe('LinkedContext', () => {
  it('holds the span where trace.getSpan looks for it', () => {
    const ctx = contextWithSpan(ROOT_CONTEXT, span);
    expect(ctx).toBeInstanceOf(LinkedContext);
    expect(trace.getSpan(ctx)).toBe(span);
    expect(trace.getSpan(ROOT_CONTEXT)).toBeUndefined();
  });

  it("keeps the parent's values (a caller's baggage) and shadows its span", () => {
    const callerSpan = trace.wrapSpanContext({ traceId: '1af7651916cd43dd8448eb211c80319c', spanId: 'c7ad6b7169203331', traceFlags: 1, isRemote: true });
    const bag = propagation.createBaggage({ tenant: { value: 't1' } });
    const parent = propagation.setBaggage(trace.setSpan(ROOT_CONTEXT, callerSpan), bag);
    const ctx = contextWithSpan(parent, span);
    expect(trace.getSpan(ctx)).toBe(span);
    expect(propagation.getBaggage(ctx)?.getEntry('tenant')?.value).toBe('t1');
    expect(trace.getSpan(trace.deleteSpan(ctx))).toBeUndefined();
  });

  it('takes an extracted trace context as the API root does', () => {
    propagation.setGlobalPropagator(new CompositePropagator({ propagators: [new W3CTraceContextPropagator(), new W3CBaggagePropagator()] }));
    afterDone(() => propagation.disable());
    const carrier = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', baggage: 'tenant=t1' };
    const fromLinked = propagation.extract(LINKED_ROOT, carrier);
    const fromRoot = propagation.extract(ROOT_CONTEXT, carrier);
    expect(fromLinked).toBeInstanceOf(LinkedContext);
    expect(trace.getSpanContext(fromLinked)).toEqual(trace.getSpanContext(fromRoot));
    expect(propagation.getBaggage(fromLinked)?.getEntry('tenant')?.value).toBe('t1');
    expect(trace.getSpan(LINKED_ROOT)).toBeUndefined();
  });

  it('answers every read as the API context built by the same steps would (model test)', () => {
    const keys = [0, 1, 2, 3].map((i) => createContextKey(`linked-context test key ${i}`));
    const op = fc.record({ del: fc.boolean(), key: fc.integer({ min: 0, max: 3 }), value: fc.integer() });
    fc.assert(
      fc.property(fc.array(op, { maxLength: 12 }), (ops) => {
        let model: Context = trace.setSpan(ROOT_CONTEXT, span);
        let linked: Context = contextWithSpan(ROOT_CONTEXT, span);
        const step = (c: Context, o: { del: boolean; key: number; value: number }) => (o.del ? c.deleteValue(keys[o.key]) : c.setValue(keys[o.key], o.value));
        for (const o of ops) {
          model = step(model, o);
          linked = step(linked, o);
          for (const k of keys) expect(linked.getValue(k)).toBe(model.getValue(k));
          expect(trace.getSpan(linked)).toBe(trace.getSpan(model));
        }
      }),
    );
  });
});
