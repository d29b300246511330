import type { TracingSettings } from './tracing-settings';

/*
 * The process's tracing handle and span-redaction secrets, kept apart from tracing.ts so that code
 * which only flushes or configures tracing (keyward serve, /metrics) does not load the
 * OpenTelemetry SDK. Process-wide on purpose: OpenTelemetry's tracer provider and context manager
 * are globals too.
 */

export interface SpanExportStats {
  /** Spans the collector accepted. */
  readonly exported: number;
  /** Spans in batches whose export failed (collector unreachable or refusing, timeout, worker gone). */
  readonly failed: number;
  /** Spans dropped because the export queue was full, or that ended after shutdown. */
  readonly dropped: number;
  /** Spans waiting: in the open batch or being exported. */
  readonly queued: number;
}

export interface Tracing {
  readonly settings: TracingSettings;
  /** Exports what is buffered. */
  forceFlush(): Promise<void>;
  /** Exports what is buffered and stops (spans become no-ops). */
  shutdown(): Promise<void>;
  /** Replaces the literal secrets redacted from exported spans. */
  setRedactionSecrets(secrets: readonly string[]): void;
  /** Export counters, for /metrics. */
  exportStats(): SpanExportStats;
}

let current: Tracing | undefined;
let secrets: readonly string[] = [];

/** The tracing set up in this process (by preload.js), if any. */
export function currentTracing(): Tracing | undefined {
  return current;
}

/** @internal tracing.ts registers what it started. */
export function setCurrentTracing(t: Tracing | undefined): void {
  current = t;
}

/**
 * Literal secrets to remove from every exported span (the bootstrap admin token), on top of the
 * key and bearer patterns; keyward serve sets them once the configuration is loaded.
 */
export function setTraceRedactionSecrets(list: readonly (string | undefined)[]): void {
  secrets = list.filter((s): s is string => s !== undefined);
  current?.setRedactionSecrets(secrets);
}

/** @internal The literal secrets set so far (tracing.ts hands them to the export worker). */
export function traceRedactionSecrets(): readonly string[] {
  return secrets;
}

/** Flushes and stops tracing, if it was started; never throws and waits at most `timeoutMs`. */
export async function shutdownTracing(timeoutMs = 2_000): Promise<void> {
  const t = current;
  if (!t) return;
  current = undefined;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([
    t.shutdown().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, timeoutMs);
      timer.unref();
    }),
  ]);
  clearTimeout(timer);
}
