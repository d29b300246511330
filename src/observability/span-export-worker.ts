import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { ExportResultCode, TraceState, type ExportResult } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { createRedactor, type Redactor } from './log-redaction';
import { decodeSpanBatch, type DecodeDeps, type EncodedSpanBatch } from './span-batch-codec';
import { redactBatch } from './span-redaction';

/*
 * The span export worker thread: takes the batches WorkerSpanProcessor posts, rebuilds the spans,
 * redacts them (span-redaction.ts), serialises them to OTLP protobuf and sends them over HTTP with
 * the SDK's own OTLPTraceExporter, which reads the OTEL_EXPORTER_OTLP_* variables itself (endpoint,
 * headers, compression, timeout, certificates) and retries what the collector asks to retry.
 * Everything here used to run on the main thread, between requests; the main thread now only
 * encodes each span into a batch (span-batch-codec.ts).
 */

export interface ExportWorkerData {
  /** OTEL_BSP_EXPORT_TIMEOUT: a batch not exported by then counts as failed. */
  readonly exportTimeoutMillis: number;
  /** Literal secrets to redact (the bootstrap admin token), on top of the key and bearer patterns. */
  readonly secrets: readonly string[];
}

export type ToWorker =
  | { readonly type: 'batch'; readonly id: number; readonly batch: EncodedSpanBatch }
  | { readonly type: 'secrets'; readonly secrets: readonly string[] }
  | { readonly type: 'flush'; readonly id: number }
  | { readonly type: 'shutdown'; readonly id: number };

export type FromWorker =
  | { readonly type: 'exported'; readonly id: number; readonly count: number; readonly ok: boolean; readonly error?: string }
  | { readonly type: 'flushed'; readonly id: number }
  | { readonly type: 'closed'; readonly id: number };

const decodeDeps: DecodeDeps = {
  resource: (attributes, schemaUrl) => resourceFromAttributes(attributes, { schemaUrl }),
  traceState: (serialized) => new TraceState(serialized),
};

/** Serves one processor's port until it says `shutdown`. */
export function serveExportPort(port: MessagePort, data: ExportWorkerData): void {
  const exporter = new OTLPTraceExporter();
  let redactor: Redactor = createRedactor({ secrets: data.secrets });
  const inFlight = new Set<Promise<void>>();
  const settled = () => Promise.allSettled([...inFlight]);
  const reply = (m: FromWorker) => port.postMessage(m);

  const exportBatch = async (id: number, batch: EncodedSpanBatch): Promise<void> => {
    let result: ExportResult;
    try {
      const spans = decodeSpanBatch(redactBatch(batch, redactor), decodeDeps);
      result = await withTimeout(new Promise<ExportResult>((resolve) => exporter.export(spans, resolve)), data.exportTimeoutMillis);
    } catch (err) {
      result = { code: ExportResultCode.FAILED, error: err instanceof Error ? err : new Error(String(err)) };
    }
    const ok = result.code === ExportResultCode.SUCCESS;
    // the error's name and message only: never a request body
    reply({ type: 'exported', id, count: batch.count, ok, error: ok ? undefined : `${result.error?.name ?? 'Error'}: ${result.error?.message ?? 'export failed'}` });
  };

  port.on('message', (m: ToWorker) => {
    switch (m.type) {
      case 'batch': {
        const p: Promise<void> = exportBatch(m.id, m.batch).finally(() => inFlight.delete(p));
        inFlight.add(p);
        break;
      }
      case 'secrets':
        redactor = createRedactor({ secrets: m.secrets });
        break;
      case 'flush':
        void settled()
          .then(() => exporter.forceFlush())
          .catch(() => undefined)
          .then(() => reply({ type: 'flushed', id: m.id }));
        break;
      case 'shutdown':
        void settled()
          .then(() => exporter.shutdown())
          .catch(() => undefined)
          .then(() => {
            reply({ type: 'closed', id: m.id });
            port.close();
          });
        break;
    }
  });
}

function withTimeout(p: Promise<ExportResult>, ms: number): Promise<ExportResult> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p,
    new Promise<ExportResult>((resolve) => {
      timer = setTimeout(() => resolve({ code: ExportResultCode.FAILED, error: new Error(`export timed out after ${ms} ms`) }), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

if (parentPort !== null && (workerData as { spanExportWorker?: ExportWorkerData } | undefined)?.spanExportWorker !== undefined) {
  serveExportPort(parentPort, (workerData as { spanExportWorker: ExportWorkerData }).spanExportWorker);
}
