import { MemoryLease, MemoryLeaseTable } from '../../../../src/adapters/events/memory-lease';
import { ManualClock } from '../../../../src/domain/clock';

describe('MemoryLease', () => {
  function setup() {
    const clock = new ManualClock(1_000);
    const table = new MemoryLeaseTable();
    const make = (instanceId: string) => new MemoryLease({ table, name: 'scheduler', instanceId, now: () => clock.now() });
    return { clock, table, a: make('a'), b: make('b') };
  }

  it('has one holder at a time', async () => {
    const { a, b } = setup();
    expect(await a.tryAcquire(1_000)).toBe(true);
    expect(await b.tryAcquire(1_000)).toBe(false);
    expect(a.holds()).toBe(true);
    expect(b.holds()).toBe(false);
    expect(b.holder()).toBeUndefined();
  });

  it('renewing keeps the same value; a new acquisition after expiry gets a new one', async () => {
    const { clock, table, a, b } = setup();
    await a.tryAcquire(1_000);
    const first = a.holder();
    clock.advance(500);
    expect(await a.tryAcquire(1_000)).toBe(true);
    expect(a.holder()).toBe(first);
    clock.advance(1_001);
    expect(table.current('scheduler', clock.now())).toBeUndefined();
    expect(await b.tryAcquire(1_000)).toBe(true);
    expect(b.holder()).not.toBe(first);
    expect(table.current('scheduler', clock.now())).toBe(b.holder());
    // a's old holding is gone even though a still remembers it
    expect(await a.tryAcquire(1_000)).toBe(false);
  });

  it('counts itself as holder for 90% of the ttl only (conservative local view)', async () => {
    const { clock, a } = setup();
    await a.tryAcquire(1_000);
    clock.advance(899);
    expect(a.holds()).toBe(true);
    clock.advance(1);
    expect(a.holds()).toBe(false);
  });

  it('release frees it at once', async () => {
    const { a, b } = setup();
    await a.tryAcquire(1_000);
    await a.release();
    expect(await b.tryAcquire(1_000)).toBe(true);
  });
});
