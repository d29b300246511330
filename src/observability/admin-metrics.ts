import { status, type sendUnaryData, type ServerUnaryCall, type ServiceDefinition, type ServiceError } from '@grpc/grpc-js';
import type { Metrics } from './metrics';

/**
 * Wraps the unary handlers of a gRPC service implementation so that each call counts into
 * keyward_admin_requests_total{method,code}: the method's name (`CreateKey`) and the status it
 * answered (`OK`, `UNAUTHENTICATED`, ...). Streaming handlers are passed through unchanged.
 */
export function measureAdminService<S extends object>(
  implementation: S,
  definition: ServiceDefinition,
  metrics: Pick<Metrics, 'adminRequest'>,
): S {
  const out: Record<string, unknown> = { ...(implementation as Record<string, unknown>) };
  for (const [name, method] of Object.entries(definition)) {
    const handler = out[name];
    if (typeof handler !== 'function' || method.requestStream || method.responseStream) continue;
    const rpc = method.path.slice(method.path.lastIndexOf('/') + 1);
    const unary = handler as (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) => void;
    out[name] = (call: ServerUnaryCall<unknown, unknown>, callback: sendUnaryData<unknown>) =>
      unary(call, (err: Partial<ServiceError> | ServiceError | null, value?: unknown, ...rest: unknown[]) => {
        metrics.adminRequest(rpc, err ? statusName(err.code) : 'OK');
        (callback as (...a: unknown[]) => void)(err, value, ...rest);
      });
  }
  return out as S;
}

function statusName(code: number | undefined): string {
  if (code === undefined) return 'UNKNOWN';
  return status[code] ?? String(code);
}
