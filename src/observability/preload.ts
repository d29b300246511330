/*
 * `node -r dist/observability/preload.js` (bin/keyward.js requires it first for `keyward serve`):
 * sets up tracing before ioredis is loaded, so that its instrumentation can patch it. With no OTLP
 * endpoint configured it loads nothing beyond reading the environment. Worker threads inherit
 * `-r`; the span export worker must not set up tracing of its own, so only the main thread does.
 */
import { isMainThread } from 'node:worker_threads';
import { tracingSettingsFromEnv } from './tracing-settings';

if (isMainThread && tracingSettingsFromEnv().enabled) {
  // loaded only when used: the SDK and the instrumentations cost start-up time and memory
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('./tracing') as typeof import('./tracing')).startTracing();
}
