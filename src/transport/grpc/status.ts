import { Metadata, status, type ServiceError } from '@grpc/grpc-js';
import { isKeywardError, type ErrorKind } from '../../domain/errors';

const CODES: Record<ErrorKind, status> = {
  invalid_argument: status.INVALID_ARGUMENT,
  not_found: status.NOT_FOUND,
  already_exists: status.ALREADY_EXISTS,
  failed_precondition: status.FAILED_PRECONDITION,
  permission_denied: status.PERMISSION_DENIED,
  unauthenticated: status.UNAUTHENTICATED,
  resource_exhausted: status.RESOURCE_EXHAUSTED,
  aborted: status.ABORTED,
  unavailable: status.UNAVAILABLE,
  internal: status.INTERNAL,
};

/**
 * Maps an error to a gRPC status at the transport edge. keyward's named errors keep their
 * message (written for callers, never holding a secret); anything else is an INTERNAL error
 * whose details stay in the log, not in the answer.
 */
export function toServiceError(err: unknown): Partial<ServiceError> & { code: status } {
  if (isKeywardError(err)) {
    const metadata = new Metadata();
    if ('field' in err && typeof err.field === 'string') metadata.set('keyward-field', err.field);
    return { code: CODES[err.kind], details: err.message, metadata };
  }
  return { code: status.INTERNAL, details: 'internal error' };
}

export function isInternal(err: unknown): boolean {
  return !isKeywardError(err) || err.kind === 'internal';
}
