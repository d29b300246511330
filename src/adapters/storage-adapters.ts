import type { AuditLog } from '../ports/audit-log';
import type { EventOutbox } from '../ports/event-outbox';
import type { KeyStore } from '../ports/key-store';
import type { Lease } from '../ports/lease';
import type { Limiter } from '../ports/limiter';
import type { PolicyStore } from '../ports/policy-store';
import type { DeadLetterStore } from './notify/dead-letter-store';

/**
 * Everything the sidecar keeps in its store of record, built together because they share it:
 * one Redis client (KEYWARD_REDIS_URL, `redis/redis-adapters.ts`) or this process's memory
 * (the embedded default, `memory-adapters.ts`).
 */
export interface StorageAdapters {
  readonly store: KeyStore;
  readonly policyStore: PolicyStore;
  readonly limiter: Limiter;
  readonly outbox: EventOutbox;
  /**
   * Held by the relay while it publishes a shared outbox, with the fencing token its acks check;
   * none when only this process has the outbox.
   */
  readonly relayLease?: Lease & { token(): number | undefined };
  /** Held by the lifecycle scheduler that acts, one sidecar at a time. */
  readonly schedulerLease: Lease;
  readonly auditLog: AuditLog;
  readonly deadLetters: DeadLetterStore;
  /** Releases every adapter; the shared client last. */
  close(): Promise<void>;
}

export interface StorageOptions {
  now: () => number;
  /** Audit entries are dropped after this long (ms). */
  auditRetentionMs: number;
  /** Most audit entries kept (per stream with Redis). */
  auditMaxEntries: number;
  /** Use this key store instead of the backend's own (tests, embedding). */
  store?: KeyStore;
}
