import { repOrder } from '../../../bench/interleaved';
import { pairedRatio } from '../../../bench/report-format';

describe('bench rep order (mirrored pairs, rotated)', () => {
  it('puts every contender in every position equally often over three pairs, and reverses within each pair', () => {
    const orders = [1, 2, 3, 4, 5, 6].map((rep) => repOrder(rep, ['A', 'B', 'C']).join(''));
    expect(orders).toEqual(['ABC', 'CBA', 'BCA', 'ACB', 'CAB', 'BAC']);
    for (const c of ['A', 'B', 'C']) {
      const positions = orders.map((o) => o.indexOf(c)).sort();
      expect(positions).toEqual([0, 0, 1, 1, 2, 2]);
    }
  });

  it('alternates two contenders within every pair', () => {
    const orders = [1, 2, 3, 4].map((rep) => repOrder(rep, ['A', 'B']).join(''));
    expect(orders).toEqual(['AB', 'BA', 'BA', 'AB']);
  });
});

describe('pairedRatio', () => {
  it('cancels an advantage of the side measured first: each pair of reps gives the geometric mean of its two ratios', () => {
    // both sides equal, but whoever runs first in a rep gets 20% more (rep 1: run first, rep 2: reference first)
    const run = { allRuns: [120, 100, 120, 100] };
    const reference = { allRuns: [100, 120, 100, 120] };
    expect(pairedRatio(run, reference)).toBeCloseTo(1, 10);
  });

  it('takes the median over the pairs, so one pair with an unlucky process does not move it', () => {
    const run = { allRuns: [90, 90, 50, 50, 91, 91] };
    const reference = { allRuns: [100, 100, 100, 100, 100, 100] };
    expect(pairedRatio(run, reference)).toBeCloseTo(0.9, 10);
  });

  it('leaves out an odd last rep, which has no mirror, and uses a single rep as it is', () => {
    expect(pairedRatio({ allRuns: [80, 80, 10] }, { allRuns: [100, 100, 100] })).toBeCloseTo(0.8, 10);
    expect(pairedRatio({ allRuns: [50] }, { allRuns: [100] })).toBe(0.5);
  });
});
