/*
 * `node -r dist/observability/preload.js` (bin/keyward.js requires it first for `keyward serve`):
 * sets up tracing before ioredis is loaded, so that its instrumentation can patch it. With no OTLP endpoint configured it loads nothing beyond reading the environment.
 */
import { tracingSettingsFromEnv } from './tracing-settings';

if (tracingSettingsFromEnv().enabled) {
  // loaded only when used: the SDK and the instrumentations cost start-up time and memory
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('./tracing') as typeof import('./tracing')).startTracing();
}
