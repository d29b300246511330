import type { KeywardProcess } from './server-processes';

/**
 * Reads a counter from a keyward's Prometheus /metrics: the sum of every sample of `metric`
 * whose labels contain all of `labels` (e.g. `code="VALID"`). The bench uses it to check what
 * the sidecar really did (validations answered, events published), not to time anything.
 */
export async function scrapeCounter(kw: KeywardProcess, metric: string, labels: readonly string[] = []): Promise<number> {
  if (kw.metricsAddr === undefined) throw new Error(`${kw.name} serves no /metrics`);
  const res = await fetch(`http://${kw.metricsAddr}/metrics`);
  if (!res.ok) throw new Error(`${kw.name} /metrics answered ${res.status}`);
  const text = await res.text();
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(metric)) continue;
    const rest = line.slice(metric.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue; // another metric with this prefix
    if (!labels.every((l) => rest.includes(l))) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(value)) sum += value;
  }
  return sum;
}
