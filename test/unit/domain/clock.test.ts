import { ManualClock, systemClock } from '../../../src/domain/clock';

describe('ManualClock', () => {
  it('starts at 0 by default or at the given time', () => {
    expect(new ManualClock().now()).toBe(0);
    expect(new ManualClock(1234).now()).toBe(1234);
  });

  it('moves only when told to', () => {
    const c = new ManualClock(100);
    expect(c.now()).toBe(100);
    c.advance(50);
    expect(c.now()).toBe(150);
    c.set(10);
    expect(c.now()).toBe(10);
    c.advance(-5);
    expect(c.now()).toBe(5);
  });
});

describe('systemClock', () => {
  it('reads the wall clock in milliseconds', () => {
    const before = Date.now();
    const t = systemClock.now();
    const after = Date.now();
    expect(t).toBeGreaterThanOrEqual(before);
    expect(t).toBeLessThanOrEqual(after);
  });
});
