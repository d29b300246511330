import { parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { BinaryReader } from '@bufbuild/protobuf/wire';
import { ExportResultCode, type ExportResult } from '@opentelemetry/core';
import { createRedactor, type Redactor } from './log-redaction';
import { encodeTraceRequest } from './otlp-trace-request';
import type { EncodedSpanBatch } from './span-batch-codec';
import { redactBatch } from './span-redaction';

// the package's `node-http` entry point (its types are only reachable by file path under node10 resolution)
// eslint-disable-next-line @typescript-eslint/no-require-imports
const otlpHttp = require('@opentelemetry/otlp-exporter-base/node-http') as typeof import('@opentelemetry/otlp-exporter-base/build/src/index-node-http');

/*
 * The span export worker thread: takes the batches WorkerSpanProcessor posts, redacts them
 * (span-redaction.ts), writes the OTLP protobuf straight from the batch (otlp-trace-request.ts)
 * and sends it with the SDK's OTLP/HTTP export delegate (the transport OTLPTraceExporter uses),
 * which reads the OTEL_EXPORTER_OTLP_* variables itself (endpoint, headers, compression, timeout,
 * certificates), retries what the collector asks to retry and bounds concurrent exports.
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

interface TraceResponse {
  partialSuccess?: { rejectedSpans?: number; errorMessage?: string };
}

/** A redacted batch in, OTLP protobuf out; the collector's ExportTraceServiceResponse back. */
const serializer = {
  serializeRequest: (batch: EncodedSpanBatch): Uint8Array => encodeTraceRequest(batch),
  deserializeResponse(data: Uint8Array): TraceResponse {
    const out: TraceResponse = {};
    const r = new BinaryReader(data);
    while (r.pos < r.len) {
      const [field, wire] = r.tag();
      if (field !== 1) {
        r.skip(wire);
        continue;
      }
      const p = new BinaryReader(r.bytes());
      const partial: NonNullable<TraceResponse['partialSuccess']> = (out.partialSuccess = {});
      while (p.pos < p.len) {
        const [f, w] = p.tag();
        if (f === 1) partial.rejectedSpans = Number(p.int64());
        else if (f === 2) partial.errorMessage = p.string();
        else p.skip(w);
      }
    }
    return out;
  },
};

function createExporter() {
  const options = otlpHttp.convertLegacyHttpOptions({}, 'TRACES', 'v1/traces', { 'Content-Type': 'application/x-protobuf' });
  return otlpHttp.createOtlpHttpExportDelegate(options, serializer, 'otlp_http_span_exporter', { name: 'span', countItems: (b: EncodedSpanBatch) => b.count }, undefined);
}

/** Serves one processor's port until it says `shutdown`. */
export function serveExportPort(port: MessagePort, data: ExportWorkerData): void {
  const exporter = createExporter();
  let redactor: Redactor = createRedactor({ secrets: data.secrets });
  const inFlight = new Set<Promise<void>>();
  const settled = () => Promise.allSettled([...inFlight]);
  const reply = (m: FromWorker) => port.postMessage(m);

  const exportBatch = async (id: number, batch: EncodedSpanBatch): Promise<void> => {
    let result: ExportResult;
    try {
      const redacted = redactBatch(batch, redactor);
      result = await withTimeout(new Promise<ExportResult>((resolve) => exporter.export(redacted, resolve)), data.exportTimeoutMillis);
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
