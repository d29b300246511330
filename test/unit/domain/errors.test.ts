import {
  AlreadyExistsError,
  ConflictError,
  FailedPreconditionError,
  InvalidArgumentError,
  isKeywardError,
  KeywardError,
  NotFoundError,
  PermissionDeniedError,
  ResourceExhaustedError,
  StoreUnavailableError,
  UnauthenticatedError,
} from '../../../src/domain/errors';

describe('errors', () => {
  it.each([
    [NotFoundError, 'not_found', false],
    [AlreadyExistsError, 'already_exists', false],
    [FailedPreconditionError, 'failed_precondition', false],
    [PermissionDeniedError, 'permission_denied', false],
    [UnauthenticatedError, 'unauthenticated', false],
    [ResourceExhaustedError, 'resource_exhausted', false],
    [ConflictError, 'aborted', true],
    [StoreUnavailableError, 'unavailable', true],
  ] as const)('%p has kind %s and retryable %s', (Cls, kind, retryable) => {
    const cause = new Error('root cause');
    const err = new Cls('boom', { cause });
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(KeywardError);
    expect(err.kind).toBe(kind);
    expect(err.retryable).toBe(retryable);
    expect(err.message).toBe('boom');
    expect(err.name).toBe(Cls.name);
    expect(err.cause).toBe(cause);
    expect(isKeywardError(err)).toBe(true);
  });

  it('InvalidArgumentError carries the field and prefixes the message with it', () => {
    const err = new InvalidArgumentError('scopes[2]', 'bad scope');
    expect(err.field).toBe('scopes[2]');
    expect(err.message).toBe('scopes[2]: bad scope');
    expect(err.kind).toBe('invalid_argument');
    expect(err.retryable).toBe(false);
    expect(err.name).toBe('InvalidArgumentError');
  });

  it('isKeywardError is false for other values', () => {
    expect(isKeywardError(new Error('x'))).toBe(false);
    expect(isKeywardError({ kind: 'not_found', message: 'x' })).toBe(false);
    expect(isKeywardError(undefined)).toBe(false);
    expect(isKeywardError('not_found')).toBe(false);
  });
});
