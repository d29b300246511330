import type { StreamRun, ThroughputRun } from './results';

/** Number and table formatting shared by the scenarios' report sections. */

export const MB = 1_000_000 / 2 ** 20; // MiB per MB

export const int = (n: number): string => Math.round(n).toLocaleString('en-US');
export const f2 = (n: number): string => n.toFixed(2);
export const ms3 = (n: number): string => `${n.toFixed(3)} ms`;
export const ratio = (n: number): string => `${n.toFixed(2)}×`;
/** Marks a figure whose least disturbed attempt was still disturbed by other processes. */
export const flag = (disturbed: boolean): string => (disturbed ? ' (disturbed †)' : '');

/**
 * The ratio of a measurement to its reference, as the bench reports and judges it, from the
 * figures of the same reps (`allRuns` are in rep order; the runs of a rep are back to back).
 * Each mirrored pair of reps (`repOrder` in interleaved.ts) gives one figure, the geometric mean
 * of its two per-rep ratios: with two contenders each goes first once per pair, which cancels the
 * advantage of being measured first in a rep; with three, a pair cancels an effect that grows
 * with the position, and the three rotated pairs of 6 reps give every contender every position
 * twice. The ratio is the median over the pairs, which drops a pair with a lucky or unlucky
 * process. An odd last rep has no mirror and is left out (one rep alone gives
 * its own ratio, for smoke runs).
 */
export function pairedRatio(run: { allRuns: readonly number[] }, reference: { allRuns: readonly number[] }): number {
  const n = Math.min(run.allRuns.length, reference.allRuns.length);
  const perRep = (i: number): number => run.allRuns[i] / reference.allRuns[i];
  if (n === 1) return perRep(0);
  const pairs = Math.floor(n / 2);
  if (pairs === 0) return NaN;
  const r = Array.from({ length: pairs }, (_, k) => Math.sqrt(perRep(2 * k) * perRep(2 * k + 1))).sort((a, b) => a - b);
  return pairs % 2 === 1 ? r[(pairs - 1) / 2] : (r[pairs / 2 - 1] + r[pairs / 2]) / 2;
}

export function fmtKeys(n: number): string {
  return n >= 1_000_000 ? `${n / 1_000_000}M` : n >= 1000 ? `${n / 1000}k` : String(n);
}

export const THROUGHPUT_HEADER = [
  '| measurement | best | vs reference (median of rep pairs) | all runs (in rep order) | mean latency | server cores | h2load cores | other cores |',
  '| --- | --- | --- | --- | --- | --- | --- | --- |',
];

/** A row of THROUGHPUT_HEADER; `reference` is what the ratio is to (the floor, tracing off, ...). */
export function throughputRow(run: ThroughputRun, reference: ThroughputRun | undefined): string {
  const vs = reference ? ratio(pairedRatio(run, reference)) : '—';
  const cores = `${f2(run.serverCores)}${run.helperCores !== undefined ? ` (+ ${run.helperName ?? 'helper'} ${f2(run.helperCores)})` : ''}`;
  return `| ${run.name}${flag(run.disturbed)} | ${int(run.reqPerSec)} req/s | ${vs} | ${run.allRuns.map(int).join(', ')} | ${run.meanMs.toFixed(2)} ms | ${cores} | ${f2(run.h2loadCores)} | ${f2(run.otherCores)} |`;
}

export function streamRow(run: StreamRun, floor: StreamRun | undefined): string {
  const vs = floor ? ratio(pairedRatio(run, floor)) : '—';
  return `| ${run.name}${flag(run.disturbed)} | ${int(run.messagesPerSec)} msg/s | ${vs} | ${run.allRuns.map(int).join(', ')} | ${f2(run.serverCores)} | ${f2(run.loadGenCores)} | ${f2(run.otherCores)} |`;
}
