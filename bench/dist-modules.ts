import { join } from 'node:path';
import type * as AdminPb from '../src/gen/keyward/v1/key_admin_service.pb';
import type * as ApiKeyPb from '../src/gen/keyward/v1/api_key.pb';
import type * as KeyServicePb from '../src/gen/keyward/v1/key_service.pb';
import type * as PageToken from '../src/app/page-token';
import type * as KeyFormat from '../src/domain/key-format';
import type * as KeyHash from '../src/domain/key-hash';
import type * as KeyId from '../src/domain/key-id';
import type * as RedisStore from '../src/adapters/store/redis-key-store';
import { ROOT } from './processes';

/**
 * keyward's modules as built in dist/ (by `npm run build`, which `npm run bench` runs first),
 * so the bench encodes, stores and decodes with exactly the code the measured `keyward serve`
 * runs. Types come from src/ (type-only imports), so type-checking needs no build.
 */
function load<T>(path: string): T {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require(join(ROOT, 'dist', path)) as T;
}

export const keyServicePb = load<typeof KeyServicePb>('gen/keyward/v1/key_service.pb.js');
export const adminPb = load<typeof AdminPb>('gen/keyward/v1/key_admin_service.pb.js');
export const apiKeyPb = load<typeof ApiKeyPb>('gen/keyward/v1/api_key.pb.js');
export const pageToken = load<typeof PageToken>('app/page-token.js');
export const keyFormat = load<typeof KeyFormat>('domain/key-format.js');
export const keyHash = load<typeof KeyHash>('domain/key-hash.js');
export const keyId = load<typeof KeyId>('domain/key-id.js');
export const redisStore = load<typeof RedisStore>('adapters/store/redis-key-store.js');

/** keyward's CLI entry, run as `node <BIN> serve`. */
export const KEYWARD_BIN = join(ROOT, 'bin', 'keyward.js');
