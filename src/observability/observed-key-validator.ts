import { KeyValidator, type CheckedValidateInput, type KeyValidatorOptions } from '../app/key-validator';
import { StoreUnavailableError } from '../domain/errors';
import type { Decision } from '../domain/validation';
import type { Metrics } from './metrics';

export interface ObservedKeyValidatorOptions extends KeyValidatorOptions {
  metrics: Pick<Metrics, 'validation'>;
}

/**
 * The KeyValidator, measured: every decision counts into keyward_validations_total{code,service}
 * and keyward_validation_duration_seconds (and the denial counters). The service label is the
 * requested service, or the key's own when the caller named none. A cache hit stays synchronous;
 * only a lookup that already went asynchronous gets one more `then`. A lookup that failed counts
 * as `UNAVAILABLE` (the store) or `INTERNAL`.
 */
export class ObservedKeyValidator extends KeyValidator {
  private readonly metrics: Pick<Metrics, 'validation'>;

  constructor(opts: ObservedKeyValidatorOptions) {
    super(opts);
    this.metrics = opts.metrics;
  }

  override validate(input: CheckedValidateInput): Decision | Promise<Decision> {
    const start = performance.now();
    const result = super.validate(input);
    if (result instanceof Promise) {
      return result.then(
        (d) => {
          this.record(d, input, start);
          return d;
        },
        (err: unknown) => {
          const code = err instanceof StoreUnavailableError ? 'UNAVAILABLE' : 'INTERNAL';
          this.metrics.validation(code, input.service, (performance.now() - start) / 1000);
          throw err;
        },
      );
    }
    this.record(result, input, start);
    return result;
  }

  private record(d: Decision, input: CheckedValidateInput, start: number): void {
    const service = input.service || (d.record?.service ?? '');
    this.metrics.validation(d.code, service, (performance.now() - start) / 1000);
  }
}
