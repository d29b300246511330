import { PooledIdGenerator } from '../../../src/observability/pooled-id-generator';

describe('PooledIdGenerator', () => {
  it('gives lowercase hex ids of W3C length, none all-zero, no repeats across many pool refills', () => {
    const g = new PooledIdGenerator();
    const seen = new Set<string>();
    for (let i = 0; i < 5_000; i++) {
      const t = g.generateTraceId();
      const s = g.generateSpanId();
      expect(t).toMatch(/^[0-9a-f]{32}$/);
      expect(s).toMatch(/^[0-9a-f]{16}$/);
      expect(t).not.toBe('0'.repeat(32));
      expect(s).not.toBe('0'.repeat(16));
      seen.add(t).add(s);
    }
    expect(seen.size).toBe(10_000);
  });

  it('spreads trace ids evenly (the ratio sampler reads their low bits)', () => {
    const g = new PooledIdGenerator();
    let low = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) if (parseInt(g.generateTraceId().slice(16, 24), 16) < 0x80000000) low++;
    expect(Math.abs(low / n - 0.5)).toBeLessThan(0.03);
  });
});
