import { runInNewContext } from 'node:vm';
import { collectStartUpGarbage } from '../../../src/cli/start-up-gc';

describe('collectStartUpGarbage', () => {
  it('runs a full collection that frees what start-up left behind', () => {
    // garbage the size of a start-up's: unreachable once this block ends
    (() => {
      const junk: unknown[] = [];
      for (let i = 0; i < 200_000; i++) junk.push({ i, s: `item-${i}` });
      return junk.length;
    })();
    const gc = collectStartUpGarbage();
    expect(gc).toBeDefined();
    expect(gc!.heapUsedAfter).toBeLessThan(gc!.heapUsedBefore);
    expect(gc!.ms).toBeGreaterThanOrEqual(0);
  });

  it('leaves no gc() behind, in this context or in contexts made later', () => {
    collectStartUpGarbage();
    expect((globalThis as { gc?: unknown }).gc).toBeUndefined();
    expect(runInNewContext('typeof gc')).toBe('undefined');
  });
});
