import type { BenchContext } from './context';
import type { BenchSettings, TargetResult } from './results';

/**
 * One bench scenario: what `BENCH_ONLY` selects by name, a measurement, the targets it checks
 * and its part of the report. Each scenario measures its own reference (floor, tracing off, ...)
 * in the same run, so any subset of scenarios gives valid ratios.
 *
 * Adding one: a module exporting `defineScenario({...})`, listed once in `SCENARIOS` (run.ts).
 */
export interface Scenario<R> {
  /** The name `BENCH_ONLY` selects it by, kebab-case. */
  readonly name: string;
  /** One line: what it measures (shown in the report's list of scenarios). */
  readonly summary: string;
  run(ctx: BenchContext): Promise<R>;
  /** Its targets, measured values and pass/fail. Ids are unique across scenarios. */
  targets(r: R, settings: BenchSettings): Omit<TargetResult, 'scenario'>[];
  /** Its section of docs/BENCHMARKS.md (markdown lines, starting with a `###` heading). */
  render(r: R, settings: BenchSettings): string[];
}

/** A scenario with its result type erased, so scenarios of different types fit in one list. */
export type AnyScenario = Scenario<unknown>;

export function defineScenario<R>(s: Scenario<R>): AnyScenario {
  return s as AnyScenario;
}

/** Builds target rows: `add(id, description, target, value, pass)`. */
export function targetList(): { add(id: string, description: string, target: string, value: string, pass: boolean): void; list: Omit<TargetResult, 'scenario'>[] } {
  const list: Omit<TargetResult, 'scenario'>[] = [];
  return { list, add: (id, description, target, value, pass) => list.push({ id, description, target, value, pass }) };
}
