import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What the server serves: a `Metrics` has it. */
export interface MetricsSource {
  render(): Promise<{ contentType: string; body: string }>;
}

export interface MetricsServerOptions {
  /** `host:port` (`0.0.0.0:9464`, `[::]:9464`, `127.0.0.1:0` for a free port). */
  addr: string;
  metrics: MetricsSource;
  /** Told when rendering fails (the scrape gets a 500). */
  onError?: (err: unknown) => void;
}

export interface MetricsServer {
  /** The bound address, `host:port` with the real port. */
  readonly address: string;
  /** Stops listening and closes open connections (scrapers keep them alive). */
  close(): Promise<void>;
}

/** `host:port` → its parts; IPv6 hosts in brackets. */
export function parseHostPort(addr: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9.-]+):(\d{1,5})$/.exec(addr);
  const port = m ? Number(m[2]) : NaN;
  if (!m || port > 65535) throw new RangeError(`metrics address must be host:port, got ${JSON.stringify(addr)}`);
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  return { host, port };
}

/**
 * A small node:http server for Prometheus: `GET /metrics` (HEAD too) answers the text format;
 * anything else is 404 (405 for other methods on /metrics). Rejects when the address cannot be
 * bound, naming it.
 */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const { host, port } = parseHostPort(opts.addr);
  const server = createServer((req, res) => {
    void handle(req, res, opts);
  });
  server.keepAliveTimeout = 65_000; // longer than Prometheus's idle timeout: no reset races
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(new Error(`cannot listen on ${opts.addr} for metrics: ${err.message}`, { cause: err }));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const a = server.address() as AddressInfo;
      const shown = a.family === 'IPv6' ? `[${a.address}]` : a.address;
      resolve({
        address: `${shown}:${a.port}`,
        close: () =>
          new Promise<void>((done) => {
            server.close(() => done());
            server.closeAllConnections();
          }),
      });
    });
  });
}

async function handle(req: IncomingMessage, res: ServerResponse, opts: MetricsServerOptions): Promise<void> {
  const path = (req.url ?? '/').split('?')[0];
  if (path !== '/metrics') {
    res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8' }).end('not found: metrics are at /metrics\n');
    return;
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.writeHead(405, { Allow: 'GET, HEAD', 'Content-Type': 'text/plain; charset=utf-8' }).end('method not allowed\n');
    return;
  }
  try {
    const { contentType, body } = await opts.metrics.render();
    res.writeHead(200, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch (err) {
    opts.onError?.(err);
    res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' }).end('cannot render metrics\n');
  }
}
