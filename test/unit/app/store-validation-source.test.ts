import { MemoryKeyStore } from '../../../src/adapters/store/memory-key-store';
import { StoreValidationSource } from '../../../src/app/store-validation-source';
import { makeRecord } from '../helpers/records';

describe('StoreValidationSource', () => {
  it('looks records up by hash and prepares their scopes', async () => {
    const store = new MemoryKeyStore();
    const record = makeRecord({ hash: 'f'.repeat(64), scopes: ['orders:*'] });
    await store.create(record);
    const source = new StoreValidationSource(store);
    const entry = await source.lookup('f'.repeat(64));
    expect(entry?.record).toEqual(record);
    expect(entry?.scopes.grants('orders:read')).toBe(true);
    expect(entry?.scopes.grants('billing:read')).toBe(false);
  });

  it('answers undefined for an unknown hash', async () => {
    const source = new StoreValidationSource(new MemoryKeyStore());
    await expect(source.lookup('0'.repeat(64))).resolves.toBeUndefined();
  });

  it('reads every lookup from the store (no caching)', async () => {
    const store = new MemoryKeyStore();
    const record = makeRecord({ hash: 'e'.repeat(64) });
    await store.create(record);
    const source = new StoreValidationSource(store);
    expect((await source.lookup(record.hash))?.record.state).toBe('active');
    await store.replace({ ...record, state: 'disabled', version: 2 }, 1);
    expect((await source.lookup(record.hash))?.record.state).toBe('disabled');
    await store.delete(record.id);
    expect(await source.lookup(record.hash)).toBeUndefined();
  });

  it('passes store failures through', async () => {
    const failure = new Error('store down');
    const store = { getByHash: () => Promise.reject(failure) } as unknown as MemoryKeyStore;
    await expect(new StoreValidationSource(store).lookup('x')).rejects.toBe(failure);
  });
});
