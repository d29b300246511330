import { MemoryEventOutbox } from '../../src/adapters/events/memory-event-outbox';
import { StoreUnavailableError } from '../../src/domain/errors';
import { describeEventOutboxContract } from './event-outbox.contract';
import { wireEvent } from './event-fixtures';

describeEventOutboxContract('MemoryEventOutbox', async () => {
  const outbox = new MemoryEventOutbox();
  return { outbox, cleanup: () => outbox.close() };
});

describe('MemoryEventOutbox', () => {
  test('close wakes a blocked read with nothing; later appends and reads fail', async () => {
    const outbox = new MemoryEventOutbox();
    const t = Date.now();
    const pending = outbox.read(undefined, 10, 10_000);
    await outbox.close();
    expect(await pending).toEqual([]);
    expect(Date.now() - t).toBeLessThan(1000);
    await expect(outbox.append(wireEvent())).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(outbox.read(undefined, 1, 0)).rejects.toBeInstanceOf(StoreUnavailableError);
  });
});
