import type { WireEvent } from './event-transport';

export interface OutboxEntry {
  /** Position in the outbox; increases with every append. */
  readonly seq: string;
  readonly event: WireEvent;
}

/**
 * A durable, ordered queue of events not yet published: an admin change appends its event here
 * first (Redis stream, or memory in embedded mode), and the relay publishes from it in order,
 * so events survive a NATS outage and a sidecar crash alike.
 */
export interface AppendOptions {
  /**
   * Idempotent append: dropped when an event with the same id was appended in the last few
   * days (adapters keep a marker per id). The lifecycle scheduler gives its events ids derived
   * from the step, so re-emitting after a crash does not duplicate them.
   */
  readonly dedupe?: boolean;
}

export interface EventOutbox {
  append(event: WireEvent, opts?: AppendOptions): Promise<void>;
  /** Up to `limit` entries after `afterSeq`, oldest first; waits up to `blockMs` when there are none. */
  read(afterSeq: string | undefined, limit: number, blockMs: number): Promise<OutboxEntry[]>;
  /** Drops entries up to and including `seq` (they are published). */
  ack(seq: string): Promise<void>;
  /** Entries waiting to be published. */
  size(): Promise<number>;
  close(): Promise<void>;
}
