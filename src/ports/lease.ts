/**
 * A named lease: at most one holder at a time, for as long as it keeps renewing. The event relay
 * and the lifecycle scheduler use one each so that a single sidecar acts at a time. Adapters:
 * RedisLease (shared by every sidecar) and MemoryLease (one process).
 *
 * Every new acquisition gets a new value (it carries a fencing token), and stores can check a
 * value in the same atomic step as a write (`WriteOptions.fence`), so a holder that paused past
 * its lease cannot write after another took over.
 */
export interface Lease {
  /** The lease's name (what a `Fence` names). */
  readonly name: string;
  /** Takes the lease when free or renews it when held by this instance; true when held for `ttlMs`. */
  tryAcquire(ttlMs: number): Promise<boolean>;
  /** Whether this instance holds the lease now, by its own (conservative) clock. */
  holds(): boolean;
  /** The held value (what fenced writes compare); undefined when not held. */
  holder(): string | undefined;
  /** Gives the lease up at once, if still held. */
  release(): Promise<void>;
}
