import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { TraceFlags, type Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { LightSpan, LightSpanSink } from './light-span';
import { SpanBatchEncoder } from './span-batch-codec';
import type { ExportWorkerData, FromWorker, ToWorker } from './span-export-worker';
import type { SpanExportStats } from './tracing-lifecycle';
import type { BatchSettings } from './tracing-settings';

/*
 * A batching span processor whose export runs in a worker thread (span-export-worker.ts).
 *
 * Measured on cached ValidateKey with every call sampled, the SDK's BatchSpanProcessor spent
 * more main-thread time serialising spans to OTLP protobuf than the request itself took; the
 * redaction pass and the HTTP client added more. Here the main thread only encodes each sampled
 * span, when it ends, into a compact batch (span-batch-codec.ts: numbers and interned strings),
 * and posts full batches to the worker, transferring their memory. The worker redacts,
 * serialises and sends.
 *
 * Batching follows the BatchSpanProcessor's settings (OTEL_BSP_*): a batch goes when it holds
 * `maxExportBatchSize` spans or `scheduledDelayMillis` after its first span; at most
 * `maxQueueSize` spans wait (the open batch plus those the worker has not finished exporting),
 * and spans beyond are dropped and counted rather than queued without bound when the collector
 * is slow or down. The worker is started with the first batch, so a process that never samples
 * (ratio 0) never starts it. `shutdown` (on SIGTERM) sends the open batch and waits for the
 * worker to finish every export.
 */

export interface WorkerSpanProcessorOptions extends BatchSettings {
  /** Literal secrets the worker redacts from every span (more can be set later). */
  readonly secrets?: readonly string[];
  /**
   * Starts the worker thread with `workerData`; by default span-export-worker.js beside this
   * file (tests start the TypeScript source through a loader).
   */
  readonly startWorker?: (workerData: { spanExportWorker: ExportWorkerData }) => Worker;
}

/** How much longer than the export timeout a flush or shutdown waits for the worker. */
const REQUEST_GRACE_MS = 1_000;

const defaultStartWorker = (workerData: { spanExportWorker: ExportWorkerData }) => new Worker(join(__dirname, 'span-export-worker.js'), { workerData });

export class WorkerSpanProcessor implements SpanProcessor, LightSpanSink {
  private readonly settings: BatchSettings;
  private readonly startWorker: (workerData: { spanExportWorker: ExportWorkerData }) => Worker;
  private secrets: readonly string[];
  private worker: Worker | undefined;
  /** False once the worker failed or shutdown began: spans are dropped. */
  private accepting = true;
  private batch: SpanBatchEncoder | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Spans posted to the worker and not yet reported on. */
  private inFlight = 0;
  private readonly batches = new Map<number, number>();
  private readonly waiters = new Map<number, () => void>();
  private nextId = 1;
  private closing: Promise<void> | undefined;
  private exported = 0;
  private failed = 0;
  private dropped = 0;
  private readonly sendOnTimer = () => {
    this.timer = undefined;
    this.send();
  };

  constructor(opts: WorkerSpanProcessorOptions) {
    this.settings = {
      maxQueueSize: opts.maxQueueSize,
      // as the SDK does: a batch cannot be larger than the queue
      maxExportBatchSize: Math.min(opts.maxExportBatchSize, opts.maxQueueSize),
      scheduledDelayMillis: opts.scheduledDelayMillis,
      exportTimeoutMillis: opts.exportTimeoutMillis,
    };
    this.secrets = opts.secrets ?? [];
    this.startWorker = opts.startWorker ?? defaultStartWorker;
  }

  onStart(_span: Span, _parentContext: Context): void {
    // nothing to do until the span ends
  }

  onEnd(span: ReadableSpan): void {
    if ((span.spanContext().traceFlags & TraceFlags.SAMPLED) === 0) return;
    const batch = this.room();
    if (batch === undefined) return;
    batch.add(span);
    if (batch.count >= this.settings.maxExportBatchSize) this.send();
  }

  /** keyward's own server spans (light-span.ts) end here, rather than through the SDK's onEnd. */
  onEndLight(span: LightSpan): void {
    if ((span.context.traceFlags & TraceFlags.SAMPLED) === 0) return;
    const batch = this.room();
    if (batch === undefined) return;
    batch.addLight(span);
    if (batch.count >= this.settings.maxExportBatchSize) this.send();
  }

  /** The open batch if a span may join it (counted as dropped otherwise). */
  private room(): SpanBatchEncoder | undefined {
    if (!this.accepting) {
      this.dropped++;
      return undefined;
    }
    let batch = this.batch;
    if (batch === undefined) {
      batch = this.batch = new SpanBatchEncoder(this.settings.maxExportBatchSize);
      this.timer = setTimeout(this.sendOnTimer, this.settings.scheduledDelayMillis);
      this.timer.unref();
    }
    if (batch.count + this.inFlight >= this.settings.maxQueueSize) {
      this.dropped++;
      return undefined;
    }
    return batch;
  }

  /** Sends the open batch and waits until the worker has exported everything sent so far. */
  async forceFlush(): Promise<void> {
    this.send();
    if (this.worker !== undefined && this.accepting) await this.request(this.worker, (id) => ({ type: 'flush', id }));
  }

  /** Sends the open batch, waits for every export to finish, and stops the worker. */
  shutdown(): Promise<void> {
    this.closing ??= this.close();
    return this.closing;
  }

  /** Replaces the literal secrets the worker redacts (the bootstrap admin token, once configured). */
  setSecrets(secrets: readonly string[]): void {
    this.secrets = secrets;
    this.worker?.postMessage({ type: 'secrets', secrets } satisfies ToWorker);
  }

  stats(): SpanExportStats {
    return { exported: this.exported, failed: this.failed, dropped: this.dropped, queued: (this.batch?.count ?? 0) + this.inFlight };
  }

  private async close(): Promise<void> {
    this.send();
    this.accepting = false;
    const worker = this.worker;
    if (worker === undefined) return;
    await this.request(worker, (id) => ({ type: 'shutdown', id }));
    await worker.terminate();
  }

  private send(): void {
    const batch = this.batch;
    if (batch === undefined) return;
    this.batch = undefined;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (batch.count === 0) return;
    const worker = this.worker ?? this.start();
    if (worker === undefined) {
      this.failed += batch.count;
      return;
    }
    const encoded = batch.finish();
    const id = this.nextId++;
    this.batches.set(id, encoded.count);
    this.inFlight += encoded.count;
    worker.postMessage({ type: 'batch', id, batch: encoded } satisfies ToWorker, [encoded.numbers.buffer as ArrayBuffer]);
  }

  private start(): Worker | undefined {
    if (!this.accepting) return undefined;
    let worker: Worker;
    try {
      worker = this.startWorker({ spanExportWorker: { exportTimeoutMillis: this.settings.exportTimeoutMillis, secrets: this.secrets } });
    } catch {
      this.accepting = false;
      return undefined;
    }
    worker.unref(); // an idle exporter must not keep the process running
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', () => this.onWorkerGone());
    worker.on('exit', () => this.onWorkerGone());
    this.worker = worker;
    return worker;
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'exported': {
        const count = this.batches.get(m.id);
        if (count === undefined) return;
        this.batches.delete(m.id);
        this.inFlight -= count;
        if (m.ok) this.exported += count;
        else this.failed += count;
        return;
      }
      case 'flushed':
      case 'closed':
        this.resolve(m.id);
        return;
    }
  }

  /** The worker failed or exited: what it held is lost, and later spans are dropped. */
  private onWorkerGone(): void {
    this.accepting = false;
    this.failed += this.inFlight;
    this.inFlight = 0;
    this.batches.clear();
    for (const resolve of this.waiters.values()) resolve();
    this.waiters.clear();
  }

  private resolve(id: number): void {
    const resolve = this.waiters.get(id);
    this.waiters.delete(id);
    if (this.waiters.size === 0) this.worker?.unref();
    resolve?.();
  }

  /**
   * Posts a request the worker answers once its exports are done, keeping the process alive
   * meanwhile (the worker is unref'd otherwise). The worker ends each export within the export
   * timeout; the wait is bounded a little beyond, in case the worker itself is stuck.
   */
  private async request(worker: Worker, message: (id: number) => ToWorker): Promise<void> {
    const id = this.nextId++;
    let timer: NodeJS.Timeout | undefined;
    await new Promise<void>((resolve) => {
      this.waiters.set(id, resolve);
      timer = setTimeout(() => this.resolve(id), this.settings.exportTimeoutMillis + REQUEST_GRACE_MS);
      worker.ref();
      worker.postMessage(message(id));
    });
    clearTimeout(timer);
  }
}
