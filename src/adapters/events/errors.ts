import { KeywardError } from '../../domain/errors';

/**
 * The event transport (NATS JetStream) cannot take or deliver events now: not connected, no
 * JetStream answer in time, or the stream is not there yet. The same call may succeed later, so
 * the relay retries it (the event stays in the outbox meanwhile).
 */
export class EventTransportUnavailableError extends KeywardError {
  readonly kind = 'unavailable';
  override readonly retryable = true;
}

/**
 * An outbox acknowledgement refused because this relay no longer holds the relay lease (another
 * sidecar took over); the entries stay for the new leader.
 */
export class NotLeaderError extends KeywardError {
  readonly kind = 'failed_precondition';
}
