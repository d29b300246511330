import { readFileSync } from 'node:fs';

/**
 * Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by category (keyward's code,
 * its generated codecs, grpc-js, Node internals, GC, idle) and the hottest functions.
 */
interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  /** Share of sampled time (0..1) per category. */
  categories: Record<string, number>;
  /** Hottest functions by self time. */
  top: { fn: string; where: string; category: string; share: number }[];
  /** Share of time by inclusive (self + callees) time, for selected keyward entry points. */
  inclusive: { fn: string; where: string; share: number }[];
}

export function category(url: string, fn: string): string {
  if (fn === '(idle)') return 'idle';
  if (fn === '(garbage collector)') return 'gc';
  if (fn === '(program)' || fn === '(root)') return 'v8/native';
  if (url.includes('/@grpc/grpc-js/')) return 'grpc-js';
  if (url.includes('/node_modules/')) return `deps:${/node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url)?.[1] ?? '?'}`;
  if (url.includes('/dist/gen/')) return 'keyward codecs (ts-proto)';
  if (url.includes('/dist/')) return 'keyward';
  if (url.startsWith('node:')) return 'node core';
  return 'v8/native';
}

function shortUrl(url: string): string {
  const m = /(?:node_modules\/|\/dist\/)(.*)$/.exec(url);
  return m ? m[1] : url.replace(/^file:\/\//, '');
}

export function summariseProfile(path: string, topN = 20): ProfileSummary {
  const p = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let total = 0;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    self.set(p.samples[i], (self.get(p.samples[i]) ?? 0) + dt);
    total += dt;
  }
  const categories: Record<string, number> = {};
  const fns = new Map<string, { fn: string; where: string; category: string; us: number }>();
  for (const [id, us] of self) {
    const n = byId.get(id)!;
    const { functionName, url, lineNumber } = n.callFrame;
    const fn = functionName || '(anonymous)';
    const cat = category(url, fn);
    categories[cat] = (categories[cat] ?? 0) + us / total;
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const key = `${fn}@${where}`;
    const entry = fns.get(key) ?? { fn, where, category: cat, us: 0 };
    entry.us += us;
    fns.set(key, entry);
  }
  const top = [...fns.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, topN)
    .map((e) => ({ fn: e.fn, where: e.where, category: e.category, share: e.us / total }));

  // inclusive time of keyward's transport handlers and use cases
  const parent = new Map<number, number>();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const inclusiveUs = new Map<string, { fn: string; where: string; us: number }>();
  for (const [id, us] of self) {
    const seen = new Set<string>();
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const n = byId.get(cur)!;
      const { functionName, url, lineNumber } = n.callFrame;
      if (!url.includes('/dist/') || url.includes('/node_modules/')) continue;
      const where = `${shortUrl(url)}:${lineNumber + 1}`;
      const key = `${functionName}@${where}`;
      if (seen.has(key)) continue; // recursion
      seen.add(key);
      const e = inclusiveUs.get(key) ?? { fn: functionName || '(anonymous)', where, us: 0 };
      e.us += us;
      inclusiveUs.set(key, e);
    }
  }
  const inclusive = [...inclusiveUs.values()]
    .sort((a, b) => b.us - a.us)
    .slice(0, 12)
    .map((e) => ({ fn: e.fn, where: e.where, share: e.us / total }));
  return { totalMs: total / 1000, categories, top, inclusive };
}
