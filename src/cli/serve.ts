import { ConfigError, loadConfig } from '../config/config';
import { createLogger, type Logger } from '../logger';
import { currentTracing, setTraceRedactionSecrets, shutdownTracing } from '../observability/tracing-lifecycle';
import { startSidecar } from '../sidecar';
import { collectStartUpGarbage, type StartUpGc } from './start-up-gc';

/**
 * `keyward serve`: runs the sidecar until SIGTERM or SIGINT, then drains in-flight calls
 * (bounded by KEYWARD_SHUTDOWN_TIMEOUT) and exits 0. A second signal exits at once.
 */
export async function serve(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`keyward: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  // no secret in any log line or exported span: keys and bearer tokens by pattern, the root token verbatim
  const logger = createLogger(config.logLevel, undefined, { secrets: [config.adminToken, ...(config.kek?.textForms() ?? [])] });
  setTraceRedactionSecrets([config.adminToken]);
  logTracing(logger);
  const starting = startSidecar({ config, logger, beforeListen: () => logStartUpGc(logger, collectStartUpGarbage()) });
  // Handlers first: a SIGTERM that arrives while the sidecar starts (it may already have said
  // "keyward listening") stops it once it is up, instead of killing it undrained.
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(130);
    logger.info({ signal }, 'shutting down');
    starting
      .then((sidecar) => sidecar.stop())
      .then(
        async () => {
          await shutdownTracing(); // export the spans still buffered
          logger.flush();
          process.exit(0);
        },
        (err) => {
          logger.error({ err }, 'shutdown failed');
          logger.flush();
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await starting;
  } catch (err) {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    logger.fatal({ err }, 'keyward failed to start');
    await shutdownTracing();
    logger.flush();
    process.exitCode = 1;
  }
}

/** Tracing is set up by preload.js before anything else; this says how, once there is a logger. */
function logTracing(logger: Logger): void {
  const t = currentTracing();
  if (!t) return;
  const { endpoint, sampler, ratio, serviceName, warnings } = t.settings;
  for (const w of warnings) logger.warn(w);
  logger.info({ endpoint, sampler, ratio: sampler.endsWith('traceidratio') ? ratio : undefined, serviceName }, 'tracing on: exporting spans over OTLP/HTTP');
}

function logStartUpGc(logger: Logger, gc: StartUpGc | undefined): void {
  if (gc === undefined) return logger.debug('start-up heap not collected: this Node does not allow a full GC from code');
  const mib = (b: number) => Math.round((b / 1048576) * 10) / 10;
  logger.debug({ heapUsedMiB: { before: mib(gc.heapUsedBefore), after: mib(gc.heapUsedAfter) }, ms: Math.round(gc.ms) }, 'start-up garbage collected');
}
