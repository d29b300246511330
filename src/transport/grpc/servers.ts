import { lstatSync, unlinkSync } from 'node:fs';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { HealthImplementation } from 'grpc-health-check';
import { KeyAdminServiceService, type KeyAdminServiceServer } from '../../gen/keyward/v1/key_admin_service.pb';
import type { KeyServiceServer } from '../../gen/keyward/v1/key_service.pb';
import type { Logger } from '../../logger';
import { measureAdminService } from '../../observability/admin-metrics';
import { traceService } from '../../observability/grpc-server-spans';
import type { Metrics } from '../../observability/metrics';
import { Http2ResponseOptions } from './http2-response-options';
import { Http2StreamTables } from './http2-stream-table';
import { KeyServiceDefinition } from './key-service-definition';
import { createReflectionService } from './reflection';

export interface GrpcServersOptions {
  keyService: KeyServiceServer;
  keyAdminService: KeyAdminServiceServer;
  health: HealthImplementation;
  logger: Logger;
  /** Counts admin calls (keyward_admin_requests_total); omit for none. */
  metrics?: Pick<Metrics, 'adminRequest'>;
  /** Sessions keep their streams in a StreamTable (http2-stream-table.ts); default true. */
  http2StreamTable?: boolean;
  /** grpc-js's response options are switched to dictionary mode (http2-response-options.ts); default true. */
  http2ResponseOptions?: boolean;
}

const SERVER_OPTIONS = {
  // Sidecar callers hold long-lived channels; answer their pings instead of dropping them.
  'grpc.keepalive_permit_without_calls': 1,
  'grpc.http2.min_ping_interval_without_data_ms': 10_000,
};

/**
 * The two listeners: the main one (KeyService, KeyAdminService, reflection, health) and a
 * health-only one that Kubernetes probes reach on the pod IP without exposing the API.
 */
export class GrpcServers {
  private readonly main = new Server(SERVER_OPTIONS);
  private readonly healthOnly = new Server(SERVER_OPTIONS);
  private readonly logger: Logger;
  /** Undefined when KEYWARD_HTTP2_STREAM_TABLE is off. */
  readonly streamTables: Http2StreamTables | undefined;
  /** Undefined when KEYWARD_HTTP2_RESPONSE_OPTIONS is off. */
  readonly responseOptions: Http2ResponseOptions | undefined;

  constructor(opts: GrpcServersOptions) {
    this.logger = opts.logger;
    if (opts.http2StreamTable ?? true) {
      this.streamTables = new Http2StreamTables((reason) =>
        this.logger.warn({ reason }, 'HTTP/2 stream table not used: sessions keep node:http2\'s own Map (KEYWARD_HTTP2_STREAM_TABLE)'),
      );
    }
    if (opts.http2ResponseOptions ?? true) {
      this.responseOptions = new Http2ResponseOptions((reason) =>
        this.logger.warn({ reason }, 'HTTP/2 response options left as they are (KEYWARD_HTTP2_RESPONSE_OPTIONS)'),
      );
    }
    // SERVER spans when tracing is on (the services as they are otherwise); health and reflection untraced
    // ValidateKey answers a cache hit synchronously: no async context tracking for it (see traceService)
    this.main.addService(KeyServiceDefinition, traceService(opts.keyService, KeyServiceDefinition, { syncFirst: ['validateKey'] }));
    const admin = opts.metrics ? measureAdminService(opts.keyAdminService, KeyAdminServiceService, opts.metrics) : opts.keyAdminService;
    this.main.addService(KeyAdminServiceService, traceService(admin, KeyAdminServiceService));
    createReflectionService().addToServer(this.main);
    opts.health.addToServer(this.main);
    opts.health.addToServer(this.healthOnly);
  }

  /** Binds both listeners; resolves to the bound addresses (a port of 0 becomes the real port). */
  async listen(grpcAddr: string, healthAddr: string): Promise<{ grpcAddr: string; healthAddr: string }> {
    const bound = {
      grpcAddr: await bind(this.main, grpcAddr),
      healthAddr: await bind(this.healthOnly, healthAddr),
    };
    for (const server of [this.main, this.healthOnly]) {
      this.streamTables?.attach(server);
      this.responseOptions?.attach(server);
    }
    return bound;
  }

  /**
   * Stops accepting calls, lets in-flight ones finish, and cancels whatever is still running
   * after `timeoutMs`.
   */
  async shutdown(timeoutMs: number): Promise<void> {
    const graceful = Promise.all([drain(this.main), drain(this.healthOnly)]);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), timeoutMs);
    });
    const result = await Promise.race([graceful, timedOut]);
    clearTimeout(timer);
    if (result === 'timeout') {
      this.logger.warn({ timeoutMs }, 'shutdown timeout reached; cancelling in-flight calls');
      this.main.forceShutdown();
      this.healthOnly.forceShutdown();
    }
  }
}

function drain(server: Server): Promise<void> {
  return new Promise((resolve) => server.tryShutdown(() => resolve()));
}

function bind(server: Server, addr: string): Promise<string> {
  if (addr.startsWith('unix://')) removeStaleSocket(addr.slice('unix://'.length));
  return new Promise((resolve, reject) => {
    server.bindAsync(addr, ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(new Error(`cannot listen on ${addr}: ${err.message}`, { cause: err }));
      resolve(addr.startsWith('unix://') ? addr : addr.replace(/:\d+$/, `:${port}`));
    });
  });
}

/** A socket file left by a killed process would make the bind fail; other files are left alone. */
function removeStaleSocket(path: string): void {
  try {
    if (lstatSync(path).isSocket()) unlinkSync(path);
  } catch {
    // absent: nothing to remove
  }
}
