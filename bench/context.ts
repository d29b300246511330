import { join } from 'node:path';
import type { ValidateKeyRequest, ValidateKeyResponse } from '../src/gen/keyward/v1/key_service.pb';
import { adminPb, keyServicePb } from './dist-modules';
import { ROOT } from './processes';
import type { BenchSettings } from './results';
import { unary, type KeywardProcess } from './server-processes';

/** What every bench phase needs: settings, tools, where to write, how to log. */
export interface BenchContext {
  settings: BenchSettings;
  h2load: string;
  redisUrl: string;
  redisPid: number;
  outDir: string;
  log(message: string): void;
}

export const OUT_DIR = join(ROOT, 'bench', 'out');

export const VALIDATE_PATH = '/keyward.v1.KeyService/ValidateKey';
export const STREAM_PATH = '/keyward.v1.KeyService/ValidateKeyStream';

/** The validation every measured call makes: a real key, its service, a wildcard-granted scope, a client IP. */
export function validationRequest(secret: string, service: string): ValidateKeyRequest {
  return keyServicePb.ValidateKeyRequest.fromPartial({ key: secret, requiredScopes: ['orders:read'], service, clientIp: '203.0.113.7' });
}

/** Creates one key through keyward's admin API with the bootstrap token; returns its secret. */
export async function createKey(kw: KeywardProcess, service: string): Promise<string> {
  return (await createKeyWithId(kw, service)).secret;
}

/** Creates one key (as createKey) and returns its id too. */
export async function createKeyWithId(kw: KeywardProcess, service: string): Promise<{ id: string; secret: string }> {
  const res = await unary(
    kw.admin.createKey,
    kw.admin,
    adminPb.CreateKeyRequest.fromPartial({
      service,
      owner: 'bench-owner',
      name: 'bench key',
      scopes: ['orders:*', 'billing:read'],
      metadata: { plan: 'pro', region: 'eu-west-1' },
    }),
    kw.root,
  );
  return { id: res.key!.id, secret: res.secret };
}

/**
 * One ValidateKey call with a grpc-js client; throws unless keyward says VALID (a gRPC error
 * would throw too). Returns the answer and the size of its gRPC frame on the wire.
 */
export async function expectValid(kw: KeywardProcess, req: ValidateKeyRequest): Promise<{ response: ValidateKeyResponse; frameBytes: number }> {
  const response = await unary(kw.keys.validateKey, kw.keys, req);
  if (!response.valid || response.code !== keyServicePb.ValidationCode.VALIDATION_CODE_VALID) {
    throw new Error(`${kw.name}: the bench key does not validate: ${JSON.stringify(response)}`);
  }
  return { response, frameBytes: 5 + keyServicePb.ValidateKeyResponse.encode(response).finish().length };
}
