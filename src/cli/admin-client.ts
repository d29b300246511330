import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { credentials, Metadata, type ServiceError } from '@grpc/grpc-js';
import { KeyAdminServiceClient } from '../gen/keyward/v1/key_admin_service.pb';
import { KeyServiceClient } from '../gen/keyward/v1/key_service.pb';

export interface ConnectionOptions {
  addr: string;
  token?: string;
}

export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

/**
 * The admin credential, from the first of: --token, KEYWARD_ADMIN_TOKEN, the file named by
 * KEYWARD_ADMIN_TOKEN_FILE, and the development token file a local `keyward serve` writes.
 */
export function resolveToken(explicit: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (explicit) return explicit;
  if (env.KEYWARD_ADMIN_TOKEN) return env.KEYWARD_ADMIN_TOKEN;
  const files = [env.KEYWARD_ADMIN_TOKEN_FILE, env.KEYWARD_DEV_ADMIN_TOKEN_FILE ?? join(homedir(), '.keyward', 'admin-token')];
  for (const f of files) {
    if (!f) continue;
    try {
      return readFileSync(f, 'utf8').trim();
    } catch {
      // try the next source
    }
  }
  return undefined;
}

/** grpc-js accepts `host:port` and `unix:///path` alike, as keyward listens on either. */
export function adminClient(opts: ConnectionOptions): { client: KeyAdminServiceClient; metadata: Metadata } {
  const metadata = new Metadata();
  if (opts.token) metadata.set('authorization', `Bearer ${opts.token}`);
  return { client: new KeyAdminServiceClient(opts.addr, credentials.createInsecure()), metadata };
}

export function keyClient(opts: ConnectionOptions): KeyServiceClient {
  return new KeyServiceClient(opts.addr, credentials.createInsecure());
}

/** Promisifies a generated unary method with a deadline. */
export function call<Req, Res>(
  method: (req: Req, md: Metadata, options: { deadline: Date }, cb: (err: ServiceError | null, res: Res) => void) => unknown,
  req: Req,
  metadata: Metadata,
  timeoutMs = 10_000,
): Promise<Res> {
  return new Promise((resolve, reject) => {
    method(req, metadata, { deadline: new Date(Date.now() + timeoutMs) }, (err, res) => {
      if (err) reject(err);
      else resolve(res);
    });
  });
}
