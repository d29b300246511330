import pino from 'pino';
import { createRedactor } from './observability/log-redaction';
import { traceContextMixin } from './observability/log-trace-context';

export type Logger = pino.Logger;

export interface LoggerOptions {
  /** Literal secrets never to write (the bootstrap admin token); keys and bearer tokens are always removed. */
  secrets?: readonly (string | undefined)[];
}

/**
 * JSON logs to stdout (or `destination`). Every line made inside a span carries `trace_id` and
 * `span_id`. No secret reaches the output: the credential fields are censored by path, and each
 * finished line goes through the redaction pass (observability/log-redaction.ts), which removes
 * keyward keys, bearer tokens and the configured secrets wherever they hide (messages, error
 * messages and stacks, nested fields).
 */
export function createLogger(level: string, destination?: pino.DestinationStream, opts: LoggerOptions = {}): Logger {
  const redactor = createRedactor({ secrets: opts.secrets });
  return pino(
    {
      name: 'keyward',
      level,
      base: { pid: process.pid },
      redact: { paths: ['authorization', '*.authorization', 'secret', '*.secret', 'key', '*.key'], censor: '[redacted]' },
      mixin: traceContextMixin,
      hooks: { streamWrite: redactor.redactString },
    },
    destination ?? pino.destination({ fd: 1, sync: false }),
  );
}
