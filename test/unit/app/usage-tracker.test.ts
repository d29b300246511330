import pino from 'pino';
import { UsageTracker } from '../../../src/app/usage-tracker';
import type { UsageDelta } from '../../../src/ports/key-store';

const logger = pino({ level: 'silent' });

class FakeStore {
  batches: { deltas: UsageDelta[]; id: string }[] = [];
  failNext = 0;
  async addUsage(deltas: readonly UsageDelta[], id: string): Promise<void> {
    this.batches.push({ deltas: [...deltas], id });
    if (this.failNext > 0) {
      this.failNext--;
      throw new Error('timeout');
    }
  }
}

describe('UsageTracker', () => {
  test('aggregates validations per key and writes one batch per flush', async () => {
    const store = new FakeStore();
    const usage = new UsageTracker({ store, logger, intervalMs: 1000 });
    for (let i = 0; i < 1000; i++) usage.record('key_a', 100 + (i % 7));
    usage.record('key_b', 50);
    expect(store.batches).toHaveLength(0); // nothing on the hot path
    await usage.flush();
    expect(store.batches).toHaveLength(1);
    expect(store.batches[0].deltas).toEqual([
      { keyId: 'key_a', count: 1000, lastUsedAt: 106 },
      { keyId: 'key_b', count: 1, lastUsedAt: 50 },
    ]);
    await usage.flush();
    expect(store.batches).toHaveLength(1); // nothing new: no write
  });

  test('a failed batch is retried whole under the same id before newer usage', async () => {
    const store = new FakeStore();
    const usage = new UsageTracker({ store, logger, intervalMs: 1000 });
    usage.record('key_a', 1);
    store.failNext = 1;
    await usage.flush();
    usage.record('key_a', 2);
    await usage.flush();
    expect(store.batches.map((b) => b.id)).toEqual([store.batches[0].id, store.batches[0].id, store.batches[2].id]);
    expect(store.batches[1].deltas).toEqual([{ keyId: 'key_a', count: 1, lastUsedAt: 1 }]);
    expect(store.batches[2].deltas).toEqual([{ keyId: 'key_a', count: 1, lastUsedAt: 2 }]);
    expect(store.batches[2].id).not.toBe(store.batches[0].id);
  });

  test('flushes on the interval, and stop() writes what is left', async () => {
    jest.useFakeTimers();
    try {
      const store = new FakeStore();
      const usage = new UsageTracker({ store, logger, intervalMs: 1000 });
      usage.start();
      usage.record('key_a', 1);
      await jest.advanceTimersByTimeAsync(999);
      expect(store.batches).toHaveLength(0);
      await jest.advanceTimersByTimeAsync(1);
      expect(store.batches).toHaveLength(1);
      usage.record('key_b', 2);
      await usage.stop();
      expect(store.batches).toHaveLength(2);
      await jest.advanceTimersByTimeAsync(5000);
      expect(store.batches).toHaveLength(2); // timer stopped
    } finally {
      jest.useRealTimers();
    }
  });

  test('pending keys are bounded while the store is down', async () => {
    const store = new FakeStore();
    const usage = new UsageTracker({ store, logger, intervalMs: 1000, maxPendingKeys: 10 });
    for (let i = 0; i < 100; i++) usage.record(`key_${i}`, 1);
    expect(usage.pendingKeys).toBe(10);
    usage.record('key_0', 2); // an existing key still counts
    await usage.flush();
    expect(store.batches[0].deltas.find((d) => d.keyId === 'key_0')).toEqual({ keyId: 'key_0', count: 2, lastUsedAt: 2 });
  });
});
