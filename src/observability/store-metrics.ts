import { isKeywardError, StoreUnavailableError } from '../domain/errors';
import type { Metrics } from './metrics';

/**
 * Wraps a store (any object whose methods return promises: KeyStore, and the same way a policy
 * store) so that every call is timed into keyward_store_operation_duration_seconds{op} and every
 * failure counted into keyward_store_errors_total{op}. A failure is the store's: unreachable
 * (StoreUnavailableError) or refusing (a non-keyward error); domain outcomes such as
 * ConflictError or AlreadyExistsError are answers, not errors. Methods run on the store itself
 * (`this` is the store, so private fields keep working); `close` is not measured. `opPrefix` tells
 * two stores apart in the `op` label (`policy_` for the policy store).
 */
export function measureStore<T extends object>(store: T, metrics: Pick<Metrics, 'storeOperation'>, opPrefix = ''): T {
  const wrappers = new Map<string, (...args: unknown[]) => unknown>();
  return new Proxy(store, {
    get(target, prop) {
      const value: unknown = Reflect.get(target, prop, target);
      if (typeof value !== 'function' || typeof prop !== 'string' || prop === 'constructor' || prop === 'close') return value;
      let w = wrappers.get(prop);
      if (w === undefined) {
        w = measured(target, value as (...args: unknown[]) => unknown, opPrefix + snakeCase(prop), metrics);
        wrappers.set(prop, w);
      }
      return w;
    },
  });
}

function measured(
  target: object,
  fn: (...args: unknown[]) => unknown,
  op: string,
  metrics: Pick<Metrics, 'storeOperation'>,
): (...args: unknown[]) => unknown {
  return (...args: unknown[]) => {
    const start = performance.now();
    let result: unknown;
    try {
      result = fn.apply(target, args);
    } catch (err) {
      metrics.storeOperation(op, (performance.now() - start) / 1000, isStoreFailure(err));
      throw err;
    }
    if (!(result instanceof Promise)) {
      metrics.storeOperation(op, (performance.now() - start) / 1000, false);
      return result;
    }
    return result.then(
      (v: unknown) => {
        metrics.storeOperation(op, (performance.now() - start) / 1000, false);
        return v;
      },
      (err: unknown) => {
        metrics.storeOperation(op, (performance.now() - start) / 1000, isStoreFailure(err));
        throw err;
      },
    );
  };
}

function isStoreFailure(err: unknown): boolean {
  return err instanceof StoreUnavailableError || !isKeywardError(err);
}

/** `getByHash` → `get_by_hash`. */
export function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}
