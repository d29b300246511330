import { createRedactor, type Redactor } from './log-redaction';
import type { TracingSettings } from './tracing-settings';

/*
 * The process's tracing handle and span-redaction secrets, kept apart from tracing.ts so that code
 * which only flushes or configures tracing (keyward serve) does not load the OpenTelemetry SDK.
 * Process-wide on purpose: OpenTelemetry's tracer provider and context manager are globals too.
 */

export interface Tracing {
  readonly settings: TracingSettings;
  /** Exports what is buffered. */
  forceFlush(): Promise<void>;
  /** Exports what is buffered and stops (spans become no-ops). */
  shutdown(): Promise<void>;
}

let current: Tracing | undefined;
let redactor: Redactor = createRedactor();

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
export function setTraceRedactionSecrets(secrets: readonly (string | undefined)[]): void {
  redactor = createRedactor({ secrets });
}

/** @internal The redactor exported spans go through. */
export function traceRedactor(): Redactor {
  return redactor;
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
