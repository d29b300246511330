import pino from 'pino';

export type Logger = pino.Logger;

/** JSON logs to stdout (or `destination`), with the credential header redacted wherever it appears. */
export function createLogger(level: string, destination?: pino.DestinationStream): Logger {
  return pino(
    {
      name: 'keyward',
      level,
      base: { pid: process.pid },
      redact: { paths: ['authorization', '*.authorization', 'secret', '*.secret', 'key', '*.key'], censor: '[redacted]' },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
