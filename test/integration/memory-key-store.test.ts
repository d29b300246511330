import { MemoryKeyStore } from '../../src/adapters/store/memory-key-store';
import { describeKeyStoreContract } from './key-store.contract';

describeKeyStoreContract('MemoryKeyStore', async () => {
  const store = new MemoryKeyStore();
  return { store, cleanup: () => store.close() };
});
