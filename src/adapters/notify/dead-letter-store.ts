/**
 * Where a notification channel puts what it could not deliver, so an operator can inspect and
 * replay it. (An adapter-side interface for now; it belongs in `ports/` once a use case reads it.)
 */

/** Why a delivery ended up here. */
export type DeadLetterReason =
  /** Every attempt failed with a retryable error (network, timeout, 408/425/429/5xx). */
  | 'exhausted'
  /** The receiver answered with a status that retrying cannot fix (other 4xx, 3xx). */
  | 'rejected'
  /** The channel's queue of pending deliveries was full; no attempt was made. */
  | 'queue_full'
  /** The channel was closed before the delivery finished (shutdown). */
  | 'closed';

export interface DeadLetter {
  /** The channel's configured name, e.g. `ops-webhook`. Never its URL (a URL may hold a token). */
  readonly channel: string;
  /** The events in the body, in order. */
  readonly eventIds: readonly string[];
  readonly reason: DeadLetterReason;
  /** Attempts made (0 when none was: `queue_full`, or `closed` before the first). */
  readonly attempts: number;
  /** The last failure: `HTTP 503`, `timeout after 5000 ms`, `network error: connect ECONNREFUSED ...`. */
  readonly lastError: string;
  /** The last HTTP status, when the receiver answered. */
  readonly lastStatus?: number;
  /** Milliseconds since the epoch; the time of recording when no attempt was made. */
  readonly firstAttemptAt: number;
  readonly lastAttemptAt: number;
  /** The exact body that was (or would have been) posted: proto JSON, never a secret. */
  readonly body: string;
}

export interface DeadLetterStore {
  /** Records one dead letter. Rejects (`StoreUnavailableError` for Redis) when it cannot. */
  append(record: DeadLetter): Promise<void>;
  /** The most recent records first, at most `limit`. */
  list(limit: number): Promise<DeadLetter[]>;
}
