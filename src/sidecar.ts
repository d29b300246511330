import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { HealthImplementation } from 'grpc-health-check';
import { MemoryKeyStore } from './adapters/store/memory-key-store';
import { AdminAuthenticator } from './app/admin-authenticator';
import { KeyAdmin } from './app/key-admin';
import { KeyValidator } from './app/key-validator';
import { StoreValidationSource } from './app/store-validation-source';
import type { Config } from './config/config';
import { systemClock, type Clock } from './domain/clock';
import { KeyIdGenerator } from './domain/key-id';
import type { Logger } from './logger';
import type { KeyStore } from './ports/key-store';
import { createKeyAdminService } from './transport/grpc/key-admin-service';
import { createKeyService } from './transport/grpc/key-service';
import { GrpcServers } from './transport/grpc/servers';

export interface SidecarDeps {
  config: Config;
  logger: Logger;
  clock?: Clock;
  /** Defaults to the embedded memory store. */
  store?: KeyStore;
}

export interface Sidecar {
  readonly grpcAddr: string;
  readonly healthAddr: string;
  /** Drains in-flight calls (bounded by `shutdownTimeout`) and releases every resource. */
  stop(): Promise<void>;
}

const SERVICES = ['', 'keyward.v1.KeyService', 'keyward.v1.KeyAdminService'];

/** The composition root: builds every adapter and use case from the config and wires them. */
export async function startSidecar(deps: SidecarDeps): Promise<Sidecar> {
  const { config, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const store = deps.store ?? new MemoryKeyStore();
  const embedded = deps.store === undefined;

  const validator = new KeyValidator({ source: new StoreValidationSource(store), clock });
  const admin = new KeyAdmin({ store, clock, ids: new KeyIdGenerator(), defaultPrefix: config.keyPrefix });
  const authenticator = new AdminAuthenticator({
    bootstrapToken: config.adminToken ?? (embedded ? devAdminToken(config.devAdminTokenFile, logger) : undefined),
    validator,
  });
  if (config.adminToken === undefined && !embedded) {
    logger.warn('no KEYWARD_ADMIN_TOKEN: only admin keys already in the store can use the admin API');
  }

  const health = new HealthImplementation(Object.fromEntries(SERVICES.map((s) => [s, 'SERVING' as const])));
  const servers = new GrpcServers({
    keyService: createKeyService({ validator, logger }),
    keyAdminService: createKeyAdminService({ admin, authenticator, logger }),
    health,
    logger,
  });
  let bound: { grpcAddr: string; healthAddr: string };
  try {
    bound = await servers.listen(config.grpcAddr, config.healthAddr);
  } catch (err) {
    await servers.shutdown(0);
    await store.close();
    throw err;
  }
  logger.info({ ...bound, store: embedded ? 'memory' : 'external' }, 'keyward listening');

  let stopping: Promise<void> | undefined;
  return {
    ...bound,
    stop() {
      stopping ??= (async () => {
        for (const s of SERVICES) health.setStatus(s, 'NOT_SERVING');
        await servers.shutdown(config.shutdownTimeout);
        await store.close();
        logger.info('keyward stopped');
      })();
      return stopping;
    },
  };
}

/**
 * Development convenience: with the embedded store and no configured token, keyward makes a
 * fresh bootstrap token and writes it (mode 0600) where the CLI looks for it. The token itself
 * is never logged, only the path.
 */
function devAdminToken(path: string, logger: Logger): string | undefined {
  const token = `kwdev_${randomBytes(32).toString('base64url')}`;
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
    writeFileSync(path, `${token}\n`, { mode: 0o600 });
    chmodSync(path, 0o600);
  } catch (err) {
    logger.warn({ path, err }, 'no KEYWARD_ADMIN_TOKEN and the development token file cannot be written: the admin API is closed');
    return undefined;
  }
  logger.warn({ path }, 'no KEYWARD_ADMIN_TOKEN: generated a development admin token and wrote it to this file');
  return token;
}
