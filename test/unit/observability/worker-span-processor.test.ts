import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { NodeTracerProvider } from '@opentelemetry/sdk-trace-node';
import { WorkerSpanProcessor } from '../../../src/observability/worker-span-processor';
import type { BatchSettings } from '../../../src/observability/tracing-settings';
import { decodeTraces, type ReceivedSpan } from '../../support/otlp-receiver';
import { startTsWorker } from './ts-worker';

/*
 * WorkerSpanProcessor with its real export worker (span-export-worker.ts in a worker thread) and a
 * real OTLP/HTTP sink on a free port: what the collector receives, per request.
 */

const WORKER = join(__dirname, '../../../src/observability/span-export-worker.ts');

interface Sink {
  readonly endpoint: string;
  /** The spans of each request, in arrival order. */
  readonly requests: ReceivedSpan[][];
  /** When true, requests are held unanswered (a stuck collector). */
  hold: boolean;
  /** The HTTP status to answer with (400: a collector refusing the request, not retried). */
  status: number;
  close(): Promise<void>;
}

async function startSink(): Promise<Sink> {
  const held: ServerResponse[] = [];
  const sink = {
    requests: [] as ReceivedSpan[][],
    hold: false,
    status: 200,
  } as Sink & { server: Server };
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (sink.hold) {
        held.push(res);
        return;
      }
      if (sink.status !== 200) {
        res.writeHead(sink.status).end();
        return;
      }
      sink.requests.push(decodeTraces(Buffer.concat(chunks)));
      res.writeHead(200, { 'content-type': 'application/x-protobuf' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(sink, {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      for (const res of held) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  });
}

let sink: Sink;
const providers: NodeTracerProvider[] = [];

beforeEach(async () => {
  sink = await startSink();
});

afterEach(async () => {
  await Promise.allSettled(providers.splice(0).map((p) => p.shutdown()));
  await sink.close();
});

/** A processor exporting to the sink, and a tracer feeding it (sampling every span). */
function setUp(batch: Partial<BatchSettings>, extraEnv: Record<string, string> = {}) {
  const processor = new WorkerSpanProcessor({
    maxQueueSize: 2048,
    maxExportBatchSize: 512,
    scheduledDelayMillis: 60_000,
    exportTimeoutMillis: 30_000,
    ...batch,
    startWorker: (workerData) =>
      startTsWorker(WORKER, { workerData, env: { ...process.env, OTEL_EXPORTER_OTLP_ENDPOINT: sink.endpoint, ...extraEnv } }),
  });
  const provider = new NodeTracerProvider({ spanProcessors: [processor] });
  providers.push(provider);
  const tracer = provider.getTracer('worker-test');
  const spans = (n: number, name = 'op') => {
    for (let i = 0; i < n; i++) tracer.startSpan(`${name} ${i}`, { attributes: { i } }).end();
  };
  return { processor, spans };
}

async function until(check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('WorkerSpanProcessor', () => {
  it('sends a batch as soon as it holds maxExportBatchSize spans, and the rest on forceFlush', async () => {
    const { processor, spans } = setUp({ maxExportBatchSize: 10 });
    spans(25);
    // the sink has both batches before the worker's acknowledgements reach this thread: wait for those too
    await until(() => sink.requests.length === 2 && processor.stats().exported === 20);
    expect(sink.requests.map((r) => r.length)).toEqual([10, 10]);
    expect(processor.stats()).toMatchObject({ queued: 5 });
    await processor.forceFlush();
    expect(sink.requests.map((r) => r.length)).toEqual([10, 10, 5]);
    expect(sink.requests.flat().map((s) => s.name)).toEqual(Array.from({ length: 25 }, (_, i) => `op ${i}`));
    expect(sink.requests.flat()[7].attributes).toEqual({ i: 7 });
    expect(processor.stats()).toEqual({ exported: 25, failed: 0, dropped: 0, queued: 0 });
  });

  it('sends a partial batch scheduledDelayMillis after its first span', async () => {
    const { processor, spans } = setUp({ maxExportBatchSize: 100, scheduledDelayMillis: 50 });
    spans(3);
    await until(() => sink.requests.length === 1);
    expect(sink.requests[0]).toHaveLength(3);
    await until(() => processor.stats().exported === 3);
  });

  it('bounds the queue (open batch + exports in flight) and counts what it drops; a timed-out export frees its room', async () => {
    sink.hold = true; // the collector never answers
    const { processor, spans } = setUp({ maxQueueSize: 20, maxExportBatchSize: 10, exportTimeoutMillis: 1_000 }, { OTEL_EXPORTER_OTLP_TIMEOUT: '60000' });
    spans(100);
    expect(processor.stats()).toEqual({ exported: 0, failed: 0, dropped: 80, queued: 20 });
    // the worker gives up on both batches after exportTimeoutMillis
    await until(() => processor.stats().failed === 20);
    expect(processor.stats().queued).toBe(0);
    sink.hold = false;
    spans(10, 'later');
    await until(() => processor.stats().exported === 10);
    expect(sink.requests.flat().map((s) => s.name)).toEqual(Array.from({ length: 10 }, (_, i) => `later ${i}`));
  });

  it('exports the open batch on shutdown, then drops (and counts) what ends after it', async () => {
    const { processor, spans } = setUp({ maxExportBatchSize: 100 });
    spans(7);
    expect(sink.requests).toEqual([]);
    await processor.shutdown();
    expect(sink.requests.map((r) => r.length)).toEqual([7]);
    spans(2);
    expect(processor.stats()).toEqual({ exported: 7, failed: 0, dropped: 2, queued: 0 });
  });

  it('never starts the worker when nothing is sampled', async () => {
    let started = 0;
    const processor = new WorkerSpanProcessor({
      maxQueueSize: 10,
      maxExportBatchSize: 5,
      scheduledDelayMillis: 10,
      exportTimeoutMillis: 1_000,
      startWorker: () => {
        started++;
        throw new Error('not expected');
      },
    });
    const { AlwaysOffSampler } = await import('@opentelemetry/sdk-trace-node');
    const provider = new NodeTracerProvider({ sampler: new AlwaysOffSampler(), spanProcessors: [processor] });
    providers.push(provider);
    for (let i = 0; i < 20; i++) provider.getTracer('t').startSpan('unsampled').end();
    await processor.forceFlush();
    await new Promise((r) => setTimeout(r, 30));
    expect(started).toBe(0);
    expect(processor.stats()).toEqual({ exported: 0, failed: 0, dropped: 0, queued: 0 });
  });

  it('redacts the secrets it is given, in the worker', async () => {
    const { processor } = setUp({ maxExportBatchSize: 100 });
    const provider = providers[0];
    processor.setSecrets(['the-bootstrap-admin-token']);
    provider.getTracer('t').startSpan('op', { attributes: { note: 'token the-bootstrap-admin-token leaked' } }).end();
    await processor.forceFlush();
    expect(sink.requests.flat()[0].attributes.note).toBe('token [redacted] leaked');
  });

  it('counts a batch the collector refuses as failed', async () => {
    sink.status = 400;
    const { processor, spans } = setUp({ maxExportBatchSize: 100 });
    spans(4);
    await processor.forceFlush();
    expect(processor.stats()).toEqual({ exported: 0, failed: 4, dropped: 0, queued: 0 });
  });
});
