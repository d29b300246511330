import { MemoryAuditLog } from './audit/memory-audit-log';
import { MemoryEventOutbox } from './events/memory-event-outbox';
import { MemoryLease, MemoryLeaseTable } from './events/memory-lease';
import { MemoryLimiter } from './limits/memory-limiter';
import { MemoryDeadLetterStore } from './notify/memory-dead-letter-store';
import { MemoryKeyStore } from './store/memory-key-store';
import { MemoryPolicyStore } from './store/memory-policy-store';
import type { StorageAdapters, StorageOptions } from './storage-adapters';

/** The embedded audit log keeps at most this many entries, whatever KEYWARD_AUDIT_MAX_ENTRIES says: they live in the sidecar's heap. */
const MAX_MEMORY_AUDIT_ENTRIES = 100_000;

/** The embedded store of record: everything in this process, for one sidecar. */
export function createMemoryAdapters(opts: StorageOptions): StorageAdapters {
  // the key store's fenced writes check the scheduler's lease in this table
  const leases = new MemoryLeaseTable();
  const store = opts.store ?? new MemoryKeyStore({ leases, now: opts.now });
  const limiter = new MemoryLimiter();
  const outbox = new MemoryEventOutbox();
  const auditLog = new MemoryAuditLog({
    retentionMs: opts.auditRetentionMs,
    maxEntries: Math.min(opts.auditMaxEntries, MAX_MEMORY_AUDIT_ENTRIES),
    now: opts.now,
  });
  return {
    store,
    policyStore: new MemoryPolicyStore(),
    limiter,
    outbox,
    schedulerLease: new MemoryLease({ table: leases, name: 'scheduler', now: opts.now }),
    auditLog,
    deadLetters: new MemoryDeadLetterStore(),
    async close() {
      await Promise.allSettled([outbox.close(), auditLog.close(), limiter.close()]);
      await store.close();
    },
  };
}
