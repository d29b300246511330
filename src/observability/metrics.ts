import { collectDefaultMetrics, Counter, Histogram, Registry, type Metric } from 'prom-client';
import { CallbackMetric, FastHistogram, LabeledCallbackMetric, TwoLabelCounter, type CounterCell, type CustomMetric } from './fast-metrics';
import { currentTracing, type SpanExportStats } from './tracing-lifecycle';

/*
 * keyward's Prometheus metrics. Components get a `Metrics` through their options (never a global),
 * so tests build sidecars with their own registry or with `noopMetrics`.
 *
 * Hot path: `validation()` is two map lookups, an increment and a histogram bucket scan (see
 * fast-metrics.ts). Cache, relay, outbox and NATS figures are read when /metrics is scraped from
 * the state those components keep anyway, so they cost nothing in between.
 *
 * prom-client rather than the OpenTelemetry Prometheus exporter: it is one small dependency with
 * the process metrics built in, renders the text format directly, and lets the hot-path metrics
 * be plain counters; the OTel metrics SDK would put attribute hashing and aggregation on every
 * validation and pull in a second export pipeline for the same text.
 */

/** Validation latency buckets, in seconds: 50 µs to 100 ms (a cache hit is a few µs of work). */
export const VALIDATION_BUCKETS = [0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1];
/** Store operation buckets, in seconds: 100 µs (memory, local Redis) to 2.5 s (a struggling Redis). */
export const STORE_BUCKETS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Distinct (code, service) pairs kept for keyward_validations_total; beyond, service="_other". */
export const MAX_VALIDATION_SERIES = 2_000;

/** What the cache exposes (ValidationCache has it). */
export interface CacheSource {
  readonly stats: { readonly hits: number; readonly misses: number; readonly evictions: number; readonly staleServed: number };
  readonly size: number;
}

/** Event pipeline sources (EventRelay, EventOutbox, NatsEventTransport have these). */
export interface EventSources {
  /** NATS connection state; omit when events stay in-process. */
  connected?: () => boolean;
  relay?: { stats(): { readonly published: number; readonly publishFailures: number } };
  outbox?: { size(): Promise<number> };
}

/** What the lifecycle scheduler counts (app/lifecycle-scheduler.ts `SchedulerStats`, structurally). */
export interface SchedulerCounts {
  readonly ticks: number;
  readonly ticksLeading: number;
  readonly steps: Readonly<Record<string, number>>;
  readonly recomputed: number;
  readonly deferred: number;
  readonly aborted: number;
}

export interface Metrics {
  /** One validation decision: its code, the requested (or the key's) service, and its latency. */
  validation(code: string, service: string, seconds: number): void;
  /** One key-store call: `op` is the method (snake_case), `failed` when the store failed (not a domain outcome). */
  storeOperation(op: string, seconds: number, failed: boolean): void;
  /** One admin RPC: the method name (`CreateKey`) and the gRPC status name (`OK`, `UNAUTHENTICATED`). */
  adminRequest(method: string, code: string): void;
  /** One webhook delivery finished: `delivered`, or the dead-letter reason. */
  webhookDelivery(channel: string, result: string): void;
  /** Reads cache figures at scrape time (the last source given wins). */
  observeCache(cache: CacheSource): void;
  /** Reads event pipeline figures at scrape time. */
  observeEvents(sources: EventSources): void;
  /** Reads the lifecycle scheduler's counts at scrape time. */
  observeScheduler(source: () => SchedulerCounts): void;
  /** The Prometheus text exposition of every metric. */
  render(): Promise<{ contentType: string; body: string }>;
}

export interface MetricsOptions {
  /** Node.js process metrics (process_*, nodejs_*). Default true. */
  processMetrics?: boolean;
  /** Default MAX_VALIDATION_SERIES. */
  maxValidationSeries?: number;
  /** Span export counters, read at scrape time; default: the process's tracing, when it is on. */
  spanExport?: () => SpanExportStats | undefined;
}

export function createMetrics(opts: MetricsOptions = {}): Metrics {
  return new PrometheusMetrics(opts);
}

const OUTBOX_READ_TIMEOUT_MS = 1_000;

class PrometheusMetrics implements Metrics {
  private readonly registry = new Registry();
  private readonly validations: TwoLabelCounter;
  private readonly validationSeconds: FastHistogram;
  private readonly storeErrors: Counter<'op'>;
  private readonly storeSeconds: Histogram<'op'>;
  private readonly adminRequests: Counter<'method' | 'code'>;
  private readonly webhookDeliveries: Counter<'channel' | 'result'>;
  private rateLimitDenials = 0;
  private creditDenials = 0;
  private cache?: CacheSource;
  private events: EventSources = {};
  private scheduler?: () => SchedulerCounts;
  /** Last (code, service) pair and its cell: consecutive validations are mostly alike. */
  private lastCode = '';
  private lastService = '';
  private lastCell?: CounterCell;

  constructor(opts: MetricsOptions) {
    const r = this.registry;
    const add = <M extends CustomMetric>(m: M): M => {
      r.registerMetric(m as unknown as Metric);
      return m;
    };
    this.validations = add(
      new TwoLabelCounter(
        'keyward_validations_total',
        'Key validations by outcome code and service (the requested one, or the key\'s when none was requested).',
        ['code', 'service'],
        opts.maxValidationSeries ?? MAX_VALIDATION_SERIES,
      ),
    );
    this.validationSeconds = add(
      new FastHistogram('keyward_validation_duration_seconds', 'Time to decide one validation, from parsing the key to the decision.', VALIDATION_BUCKETS),
    );
    add(new CallbackMetric('keyward_ratelimit_denials_total', 'Validations denied by a rate limit (code RATE_LIMITED).', 'counter', () => this.rateLimitDenials));
    add(new CallbackMetric('keyward_credit_denials_total', 'Validations denied for lack of usage credits (code USAGE_EXCEEDED).', 'counter', () => this.creditDenials));

    const cache = (read: (c: CacheSource) => number) => () => (this.cache ? read(this.cache) : undefined);
    add(new CallbackMetric('keyward_cache_hits_total', 'Validation cache lookups answered from memory.', 'counter', cache((c) => c.stats.hits)));
    add(new CallbackMetric('keyward_cache_misses_total', 'Validation cache lookups that went to the store (or joined a read in flight).', 'counter', cache((c) => c.stats.misses)));
    add(new CallbackMetric('keyward_cache_evictions_total', 'Entries evicted from the validation cache to make room.', 'counter', cache((c) => c.stats.evictions)));
    add(new CallbackMetric('keyward_cache_stale_served_total', 'Entries served past their TTL because the store was unreachable.', 'counter', cache((c) => c.stats.staleServed)));
    add(new CallbackMetric('keyward_cache_entries', 'Entries in the validation cache.', 'gauge', cache((c) => c.size)));

    this.storeErrors = new Counter({ name: 'keyward_store_errors_total', help: 'Key-store calls that failed (store unreachable or refusing), by operation.', labelNames: ['op'], registers: [r] });
    this.storeSeconds = new Histogram({
      name: 'keyward_store_operation_duration_seconds',
      help: 'Key-store call latency, by operation.',
      labelNames: ['op'],
      buckets: STORE_BUCKETS,
      registers: [r],
    });

    add(new CallbackMetric('keyward_nats_connected', '1 while connected to NATS, 0 while not (absent without NATS).', 'gauge', () => {
      const c = this.events.connected;
      return c === undefined ? undefined : c() ? 1 : 0;
    }));
    add(new CallbackMetric('keyward_events_published_total', 'Events this sidecar published to the event transport (as the relay leader).', 'counter', () => this.events.relay?.stats().published));
    add(new CallbackMetric('keyward_events_publish_failures_total', 'Failed attempts to publish an event (each is retried).', 'counter', () => this.events.relay?.stats().publishFailures));
    add(new CallbackMetric('keyward_events_outbox_pending', 'Events waiting in the outbox to be published.', 'gauge', () => {
      const outbox = this.events.outbox;
      return outbox === undefined ? undefined : withTimeout(outbox.size(), OUTBOX_READ_TIMEOUT_MS);
    }));

    this.webhookDeliveries = new Counter({
      name: 'keyward_webhook_deliveries_total',
      help: 'Finished webhook deliveries by channel and result (delivered, or the dead-letter reason).',
      labelNames: ['channel', 'result'],
      registers: [r],
    });
    this.adminRequests = new Counter({
      name: 'keyward_admin_requests_total',
      help: 'Admin RPCs by method and gRPC status code.',
      labelNames: ['method', 'code'],
      registers: [r],
    });
    // absent while tracing is off
    const spans = opts.spanExport ?? (() => currentTracing()?.exportStats());
    add(new CallbackMetric('keyward_trace_spans_exported_total', 'Spans the OTLP collector accepted.', 'counter', () => spans()?.exported));
    add(new CallbackMetric('keyward_trace_spans_failed_total', 'Spans in export batches that failed (collector unreachable or refusing, timeout).', 'counter', () => spans()?.failed));
    add(new CallbackMetric('keyward_trace_spans_dropped_total', 'Sampled spans dropped because the export queue (OTEL_BSP_MAX_QUEUE_SIZE) was full.', 'counter', () => spans()?.dropped));
    add(new CallbackMetric('keyward_trace_spans_queued', 'Spans waiting for export.', 'gauge', () => spans()?.queued));
    const sched = () => this.scheduler?.();
    add(new CallbackMetric('keyward_scheduler_ticks_total', 'Lifecycle scheduler ticks run by this sidecar.', 'counter', () => sched()?.ticks));
    add(new CallbackMetric('keyward_scheduler_leading_ticks_total', 'Scheduler ticks in which this sidecar held the scheduler lease (and so acted).', 'counter', () => sched()?.ticksLeading));
    add(new LabeledCallbackMetric('keyward_scheduler_steps_total', 'Lifecycle steps done (expire, retire, rotation_notice, expire_at_max_age, auto_rotate).', 'counter', 'step', () => sched()?.steps));
    add(new CallbackMetric('keyward_scheduler_recomputed_total', 'Keys whose due time the scheduler rewrote after a policy change.', 'counter', () => sched()?.recomputed));
    add(new CallbackMetric('keyward_scheduler_deferred_total', 'Keys set aside for a while because a lifecycle step could not be done (see the logs).', 'counter', () => sched()?.deferred));
    add(new CallbackMetric('keyward_scheduler_aborted_ticks_total', 'Scheduler ticks stopped early: lease lost (fenced) or store failure.', 'counter', () => sched()?.aborted));
    if (opts.processMetrics ?? true) collectDefaultMetrics({ register: r });
  }

  observeScheduler(source: () => SchedulerCounts): void {
    this.scheduler = source;
  }

  validation(code: string, service: string, seconds: number): void {
    let cell = this.lastCell;
    if (cell === undefined || code !== this.lastCode || service !== this.lastService) {
      cell = this.validations.cell(code, service);
      this.lastCell = cell;
      this.lastCode = code;
      this.lastService = service;
    }
    cell.value++;
    this.validationSeconds.observe(seconds);
    if (code === 'RATE_LIMITED') this.rateLimitDenials++;
    else if (code === 'USAGE_EXCEEDED') this.creditDenials++;
  }

  storeOperation(op: string, seconds: number, failed: boolean): void {
    this.storeSeconds.observe({ op }, seconds);
    if (failed) this.storeErrors.inc({ op });
  }

  adminRequest(method: string, code: string): void {
    this.adminRequests.inc({ method, code });
  }

  webhookDelivery(channel: string, result: string): void {
    this.webhookDeliveries.inc({ channel, result });
  }

  observeCache(cache: CacheSource): void {
    this.cache = cache;
  }

  observeEvents(sources: EventSources): void {
    this.events = { ...this.events, ...sources };
  }

  async render(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.registry.contentType, body: await this.registry.metrics() };
  }
}

/** For tests and tools that build components without metrics. */
export const noopMetrics: Metrics = Object.freeze({
  validation: () => undefined,
  storeOperation: () => undefined,
  adminRequest: () => undefined,
  webhookDelivery: () => undefined,
  observeCache: () => undefined,
  observeEvents: () => undefined,
  observeScheduler: () => undefined,
  render: async () => ({ contentType: Registry.PROMETHEUS_CONTENT_TYPE, body: '' }),
});

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<undefined>((resolve) => {
      timer = setTimeout(resolve, ms, undefined);
    }),
  ]).finally(() => clearTimeout(timer));
}
