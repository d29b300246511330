import { ConfigError, loadConfig } from '../config/config';
import { createLogger } from '../logger';
import { startSidecar } from '../sidecar';

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
  const logger = createLogger(config.logLevel);
  let sidecar;
  try {
    sidecar = await startSidecar({ config, logger });
  } catch (err) {
    logger.fatal({ err }, 'keyward failed to start');
    logger.flush();
    process.exitCode = 1;
    return;
  }
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    if (++signals > 1) process.exit(130);
    logger.info({ signal }, 'shutting down');
    sidecar.stop().then(
      () => {
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
}
