/*
 * The OTEL_* variables keyward honours for traces, read without loading the OpenTelemetry SDK (so
 * a process with tracing off never loads it):
 *
 * - tracing is on when OTEL_EXPORTER_OTLP_TRACES_ENDPOINT or OTEL_EXPORTER_OTLP_ENDPOINT is set,
 *   unless OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none;
 * - OTLP over HTTP/protobuf only (other protocols and exporters are reported and ignored);
 * - OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG, default parentbased_traceidratio at 1.0;
 * - OTEL_SERVICE_NAME, default `keyward`;
 * - OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_EXPORT_TIMEOUT, OTEL_BSP_MAX_QUEUE_SIZE and
 *   OTEL_BSP_MAX_EXPORT_BATCH_SIZE for batching, with the specification's defaults.
 */

export const DEFAULT_SERVICE_NAME = 'keyward';

/** How spans are batched for export (the BatchSpanProcessor's settings). */
export interface BatchSettings {
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  readonly scheduledDelayMillis: number;
  readonly exportTimeoutMillis: number;
}

/** The specification's defaults for the OTEL_BSP_* variables. */
export const DEFAULT_BATCH_SETTINGS: BatchSettings = { maxQueueSize: 2048, maxExportBatchSize: 512, scheduledDelayMillis: 5000, exportTimeoutMillis: 30000 };
export const SAMPLERS = [
  'always_on',
  'always_off',
  'traceidratio',
  'parentbased_always_on',
  'parentbased_always_off',
  'parentbased_traceidratio',
] as const;
export type SamplerName = (typeof SAMPLERS)[number];

export interface TracingSettings {
  /** False: nothing is registered. */
  readonly enabled: boolean;
  /** The traces endpoint, without user-info (for the start-up log line). */
  readonly endpoint?: string;
  readonly sampler: SamplerName;
  readonly ratio: number;
  readonly serviceName: string;
  readonly batch: BatchSettings;
  /** Settings that were ignored, and why (logged once the logger exists). */
  readonly warnings: readonly string[];
}

/** Reads the OTEL_* variables keyward honours; pure, for tests. */
export function tracingSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): TracingSettings {
  const warnings: string[] = [];
  const value = (name: string): string | undefined => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const endpoint = value('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') ?? value('OTEL_EXPORTER_OTLP_ENDPOINT');
  const disabled = value('OTEL_SDK_DISABLED')?.toLowerCase() === 'true';
  const exporters = (value('OTEL_TRACES_EXPORTER') ?? 'otlp').toLowerCase().split(',').map((s) => s.trim());
  if (exporters.some((e) => e !== 'otlp' && e !== 'none')) {
    warnings.push(`OTEL_TRACES_EXPORTER=${value('OTEL_TRACES_EXPORTER')}: only otlp (HTTP/protobuf) and none are supported; using otlp`);
  }
  const protocol = value('OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? value('OTEL_EXPORTER_OTLP_PROTOCOL');
  if (protocol !== undefined && protocol !== 'http/protobuf') {
    warnings.push(`OTEL_EXPORTER_OTLP_PROTOCOL=${protocol}: only http/protobuf is supported; using it`);
  }

  let sampler: SamplerName = 'parentbased_traceidratio';
  const samplerEnv = value('OTEL_TRACES_SAMPLER')?.toLowerCase();
  if (samplerEnv !== undefined) {
    if ((SAMPLERS as readonly string[]).includes(samplerEnv)) sampler = samplerEnv as SamplerName;
    else warnings.push(`OTEL_TRACES_SAMPLER=${samplerEnv}: expected one of ${SAMPLERS.join(', ')}; using ${sampler}`);
  }
  let ratio = 1;
  const arg = value('OTEL_TRACES_SAMPLER_ARG');
  if (arg !== undefined && sampler.endsWith('traceidratio')) {
    const n = Number(arg);
    if (Number.isFinite(n) && n >= 0 && n <= 1) ratio = n;
    else warnings.push(`OTEL_TRACES_SAMPLER_ARG=${arg}: expected a ratio from 0 to 1; using 1`);
  }
  const count = (name: string, fallback: number, min: number): number => {
    const v = value(name);
    if (v === undefined) return fallback;
    const n = Number(v);
    if (Number.isInteger(n) && n >= min) return n;
    warnings.push(`${name}=${v}: expected a whole number of at least ${min}; using ${fallback}`);
    return fallback;
  };
  const d = DEFAULT_BATCH_SETTINGS;
  const batch: BatchSettings = {
    maxQueueSize: count('OTEL_BSP_MAX_QUEUE_SIZE', d.maxQueueSize, 1),
    maxExportBatchSize: count('OTEL_BSP_MAX_EXPORT_BATCH_SIZE', d.maxExportBatchSize, 1),
    scheduledDelayMillis: count('OTEL_BSP_SCHEDULE_DELAY', d.scheduledDelayMillis, 0),
    exportTimeoutMillis: count('OTEL_BSP_EXPORT_TIMEOUT', d.exportTimeoutMillis, 1),
  };
  return {
    enabled: endpoint !== undefined && !disabled && !exporters.includes('none'),
    endpoint: endpoint === undefined ? undefined : withoutUserInfo(endpoint),
    sampler,
    ratio,
    serviceName: value('OTEL_SERVICE_NAME') ?? DEFAULT_SERVICE_NAME,
    batch,
    warnings,
  };
}

function withoutUserInfo(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString();
  } catch {
    return '(not a valid URL)';
  }
}
