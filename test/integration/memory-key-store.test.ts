import { MemoryLease, MemoryLeaseTable } from '../../src/adapters/events/memory-lease';
import { MemoryKeyStore } from '../../src/adapters/store/memory-key-store';
import { ManualClock } from '../../src/domain/clock';
import { describeKeyStoreContract } from './key-store.contract';

describeKeyStoreContract('MemoryKeyStore', async () => {
  // A fake clock for sealed-secret expiry and leases; starts at the real time, as the
  // contract's records carry real-time ids.
  const clock = new ManualClock(Date.now());
  const now = (): number => clock.now();
  const leases = new MemoryLeaseTable();
  const store = new MemoryKeyStore({ leases, now });
  return {
    store,
    cleanup: () => store.close(),
    lease: (name) => new MemoryLease({ table: leases, name, now }),
    now,
    pass: async (ms) => clock.advance(ms),
  };
});
