import { Metadata, type ServiceDefinition } from '@grpc/grpc-js';
import { context, trace, type Span } from '@opentelemetry/api';
import { traceService } from '../../../src/observability/grpc-server-spans';
import { parentOf, startTestTracing } from './tracing-harness';

const definition = {
  validateKey: { path: '/keyward.v1.KeyService/ValidateKey', requestStream: false, responseStream: false },
} as unknown as ServiceDefinition;

/** Calls the traced unary handler once with `traceparent` metadata; returns the span active inside it. */
function callWith(traceparent: string): Span | undefined {
  let active: Span | undefined;
  const service = traceService(
    {
      validateKey: (_call: unknown, callback: (err: null, value: number) => void) => {
        active = trace.getSpan(context.active());
        callback(null, 1);
      },
    },
    definition,
    { syncFirst: ['validateKey'] },
  );
  const metadata = new Metadata();
  metadata.set('traceparent', traceparent);
  service.validateKey({ metadata }, () => undefined);
  return active;
}

describe('traceService: the caller trace context', () => {
  it('continues a valid caller trace (extracted onto a linked root)', async () => {
    const tracing = startTestTracing({ syncFirst: true });
    try {
      const active = callWith('00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
      expect(active?.spanContext().traceId).toBe('0af7651916cd43dd8448eb211c80319c');
      const [span] = tracing.spans();
      expect(parentOf(span)).toBe('b7ad6b7169203331');
    } finally {
      await tracing.stop();
    }
  });

  it('treats an invalid traceparent as none: an unsampled call runs without a span in its context', async () => {
    const tracing = startTestTracing({ sampled: false, syncFirst: true });
    try {
      expect(callWith('not-a-traceparent')).toBeUndefined();
      expect(tracing.spans()).toHaveLength(0);
    } finally {
      await tracing.stop();
    }
  });
});
