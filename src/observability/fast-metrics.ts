/*
 * Prometheus metrics cheap enough for the validation hot path, registered in a prom-client
 * registry like any other metric (the registry only calls `get()` when scraped).
 *
 * prom-client's own counters hash the label object on every `inc()` and its histogram makes a
 * closure per `observe()`; here a labelled counter hands out child cells (one object per label
 * pair, found in two small maps, no allocation after the first call) and a histogram is an array
 * of bucket counts. Cumulative buckets and label objects are only built at scrape time.
 */

/** What prom-client's registry reads from a metric (its `MetricObjectWithValues`). */
export interface MetricSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  aggregator: 'sum';
  values: { value: number; labels: Record<string, string | number>; metricName?: string }[];
}

/** The shape prom-client's `Registry.registerMetric` needs at run time. */
export interface CustomMetric {
  readonly name: string;
  readonly help: string;
  readonly type: MetricSnapshot['type'];
  readonly aggregator: 'sum';
  get(): Promise<MetricSnapshot>;
}

/** One counter cell; increment `value` directly. */
export interface CounterCell {
  value: number;
}

/** Label value that takes every series beyond the cap (a flood of distinct services, say). */
export const OVERFLOW_LABEL = '_other';

/**
 * A counter with two labels and at most `maxSeries` label pairs: beyond that, new second-label
 * values are counted under `_other`, so request data cannot blow up the series count.
 */
export class TwoLabelCounter implements CustomMetric {
  readonly type = 'counter';
  readonly aggregator = 'sum';
  private readonly cells = new Map<string, Map<string, CounterCell>>();
  private series = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly labelNames: readonly [string, string],
    private readonly maxSeries: number,
  ) {}

  cell(first: string, second: string): CounterCell {
    let inner = this.cells.get(first);
    if (inner === undefined) {
      inner = new Map();
      this.cells.set(first, inner);
    }
    let c = inner.get(second);
    if (c !== undefined) return c;
    if (this.series >= this.maxSeries) {
      c = inner.get(OVERFLOW_LABEL);
      if (c !== undefined) return c;
      second = OVERFLOW_LABEL;
    }
    c = { value: 0 };
    inner.set(second, c);
    this.series++;
    return c;
  }

  async get(): Promise<MetricSnapshot> {
    const [a, b] = this.labelNames;
    const values: MetricSnapshot['values'] = [];
    for (const [first, inner] of this.cells) {
      for (const [second, c] of inner) values.push({ value: c.value, labels: { [a]: first, [b]: second } });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** A histogram without labels; `observe` is a bucket scan and three additions. */
export class FastHistogram implements CustomMetric {
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(
    readonly name: string,
    readonly help: string,
    private readonly bounds: readonly number[],
  ) {
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i] > bounds[i - 1])) throw new RangeError(`${name}: buckets must increase`);
    }
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && value > b[i]) i++;
    this.counts[i]++;
    this.sum += value;
    this.count++;
  }

  async get(): Promise<MetricSnapshot> {
    const values: MetricSnapshot['values'] = [];
    let cumulative = 0;
    for (let i = 0; i < this.bounds.length; i++) {
      cumulative += this.counts[i];
      values.push({ metricName: `${this.name}_bucket`, labels: { le: this.bounds[i] }, value: cumulative });
    }
    values.push({ metricName: `${this.name}_bucket`, labels: { le: '+Inf' }, value: this.count });
    values.push({ metricName: `${this.name}_sum`, labels: {}, value: this.sum });
    values.push({ metricName: `${this.name}_count`, labels: {}, value: this.count });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/**
 * A counter or gauge read at scrape time from state kept elsewhere (cache statistics, relay
 * counts, connection state): nothing at all on the path that changes it. `read` returning
 * undefined (source not there) leaves the metric without a sample.
 */
export class CallbackMetric implements CustomMetric {
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
    private readonly read: () => number | undefined | Promise<number | undefined>,
  ) {}

  async get(): Promise<MetricSnapshot> {
    let value: number | undefined;
    try {
      value = await this.read();
    } catch {
      value = undefined; // a source that cannot answer now (Redis down): no sample this scrape
    }
    const values = value === undefined || !Number.isFinite(value) ? [] : [{ value, labels: {} }];
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}

/** A counter or gauge with one label, read from a source at scrape time (`{label value: number}`). */
export class LabeledCallbackMetric implements CustomMetric {
  readonly aggregator = 'sum';

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
    private readonly label: string,
    private readonly read: () => Readonly<Record<string, number>> | undefined,
  ) {}

  async get(): Promise<MetricSnapshot> {
    let byLabel: Readonly<Record<string, number>> | undefined;
    try {
      byLabel = this.read();
    } catch {
      byLabel = undefined;
    }
    const values = Object.entries(byLabel ?? {})
      .filter(([, value]) => Number.isFinite(value))
      .map(([labelValue, value]) => ({ value, labels: { [this.label]: labelValue } }));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }
}
