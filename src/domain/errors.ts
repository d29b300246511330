/**
 * Named errors of keyward. Outcomes (a revoked key, a denied scope) are data, not errors;
 * these are for bad requests and failures. The transport edge maps `kind` to a gRPC status.
 */
export type ErrorKind =
  | 'invalid_argument'
  | 'not_found'
  | 'already_exists'
  | 'failed_precondition'
  | 'permission_denied'
  | 'unauthenticated'
  | 'resource_exhausted'
  | 'aborted'
  | 'unavailable'
  | 'internal';

export abstract class KeywardError extends Error {
  abstract readonly kind: ErrorKind;
  /** Whether the same call may succeed when retried unchanged. */
  readonly retryable: boolean = false;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** A request field breaks a rule. `field` is the request field's name (proto spelling). */
export class InvalidArgumentError extends KeywardError {
  readonly kind = 'invalid_argument';
  constructor(
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
  }
}

export class NotFoundError extends KeywardError {
  readonly kind = 'not_found';
}

export class AlreadyExistsError extends KeywardError {
  readonly kind = 'already_exists';
}

/** The request is well-formed but the target's state forbids it (e.g. re-enabling a revoked key). */
export class FailedPreconditionError extends KeywardError {
  readonly kind = 'failed_precondition';
}

export class PermissionDeniedError extends KeywardError {
  readonly kind = 'permission_denied';
}

export class UnauthenticatedError extends KeywardError {
  readonly kind = 'unauthenticated';
}

export class ResourceExhaustedError extends KeywardError {
  readonly kind = 'resource_exhausted';
}

/** A concurrent writer changed the record first; the caller may retry. */
export class ConflictError extends KeywardError {
  readonly kind = 'aborted';
  override readonly retryable = true;
}

/** A fenced write came from a lease holder that is no longer current; nothing was written. */
export class FencedError extends KeywardError {
  readonly kind = 'aborted';
}

/** The store (or another dependency) cannot be reached. */
export class StoreUnavailableError extends KeywardError {
  readonly kind = 'unavailable';
  override readonly retryable = true;
}

export function isKeywardError(err: unknown): err is KeywardError {
  return err instanceof KeywardError;
}
