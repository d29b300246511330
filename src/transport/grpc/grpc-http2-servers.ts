import type { Http2Server, ServerHttp2Session } from 'node:http2';
import type { Server } from '@grpc/grpc-js';

/** What grpc-js keeps per HTTP/2 server it listens with. */
export interface GrpcHttp2ServerInfo {
  readonly sessions?: Set<ServerHttp2Session>;
}

/**
 * The node:http2 servers a bound grpc-js server listens with, read from grpc-js's private
 * `http2Servers` (grpc-js 1.10 to 1.14); undefined when grpc-js keeps them elsewhere. For the
 * node:http2 workarounds (http2-stream-table.ts, http2-response-options.ts), which must reach the
 * sessions and streams grpc-js does not expose.
 */
export function grpcHttp2Servers(server: Server): Map<Http2Server, GrpcHttp2ServerInfo> | undefined {
  const servers = (server as unknown as { http2Servers?: unknown }).http2Servers;
  return servers instanceof Map ? (servers as Map<Http2Server, GrpcHttp2ServerInfo>) : undefined;
}
