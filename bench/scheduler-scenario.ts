import { f2, ratio } from './report-format';
import { defineScenario, targetList } from './scenario';
import { schedulerTickBench, type SchedulerTickResult } from './scheduler-bench';

/**
 * Issue 6: an idle scheduler tick (nothing due) costs the same with 1M keys as with 10k: the
 * tick's one store read is the due index's head. ZRANGEBYSCORE is O(log n + due) in Redis's
 * skiplist, so a strict worst case would be log(1M)/log(10k) = 1.5x; the pass mark is that.
 */
export const schedulerScenario = defineScenario<SchedulerTickResult>({
  name: 'scheduler',
  summary: 'lifecycle scheduler tick with nothing due: Redis time per tick read at 10k vs BENCH_MAX_KEYS keys',
  run: (ctx) =>
    schedulerTickBench({
      redisUrl: ctx.redisUrl,
      stages: [Math.min(10_000, ctx.settings.maxKeys / 10), ctx.settings.maxKeys],
      // many short blocks: a call costs ~1 µs in Redis, so noise needs many samples to average out
      calls: 40_000,
      blocks: 20,
      log: ctx.log,
    }),
  targets: (r) => {
    const t = targetList();
    const last = r.stages[r.stages.length - 1];
    t.add(
      'scheduler-tick',
      `idle scheduler tick, Redis time per due-index read, ${last.keys.toLocaleString('en')} vs ${r.stages[0].keys.toLocaleString('en')} keys`,
      '≤ 1.5× (O(1) in the key count)',
      ratio(r.redisCostRatio),
      r.redisCostRatio <= 1.5,
    );
    return t.list;
  },
  render: (r) => [
    '### Lifecycle scheduler tick (nothing due)',
    '',
    `Every key has a due time one to two years ahead, so the due index is as large as the store; the tick reads \`due(now, ${r.batch})\`.`,
    '',
    '| keys | due index | Redis µs per read | client median (ms) | client p99 (ms) | load (s) |',
    '| ---: | ---: | ---: | ---: | ---: | ---: |',
    ...r.stages.map(
      (s) => `| ${s.keys.toLocaleString('en')} | ${s.dueIndexSize.toLocaleString('en')} | ${f2(s.redisUsecPerCall)} | ${s.clientMedianMs.toFixed(3)} | ${s.clientP99Ms.toFixed(3)} | ${s.loadSeconds.toFixed(0)} |`,
    ),
    '',
    `Ratio largest/smallest: Redis time ${ratio(r.redisCostRatio)} (blocks ${ratio(r.redisCostRatioRange[0])}–${ratio(r.redisCostRatioRange[1])}), client median ${ratio(r.clientMedianRatio)}.`,
  ],
});
