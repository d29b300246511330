import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { types } from 'node:util';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import pino from 'pino';
import type { KeyAdminServiceServer } from '../../src/gen/keyward/v1/key_admin_service.pb';
import type { KeyServiceServer } from '../../src/gen/keyward/v1/key_service.pb';
import { StreamTable, useStreamTable } from '../../src/transport/grpc/http2-stream-table';
import { GrpcServers } from '../../src/transport/grpc/servers';

/*
 * The stream table in real node:http2 sessions: node:http2 keeps working with it (requests, many
 * streams, a session torn down with streams open), and keyward's gRPC servers install it, unless
 * told not to.
 */

function sessionStreams(session: http2.ServerHttp2Session): unknown {
  const state = Object.getOwnPropertySymbols(session).find((s) => s.description === 'state')!;
  return (session as unknown as Record<symbol, { streams: unknown }>)[state].streams;
}

describe('StreamTable in node:http2 sessions', () => {
  let server: http2.Http2Server;
  let client: http2.ClientHttp2Session;
  let serverSession: http2.ServerHttp2Session | undefined;

  beforeEach(async () => {
    serverSession = undefined;
    server = http2.createServer();
    server.on('session', (s) => {
      serverSession = s;
      expect(useStreamTable(s)).toBe(true);
    });
    server.on('stream', (stream, headers) => {
      if (headers[':path'] === '/hang') return; // left open
      stream.respond({ ':status': 200 });
      stream.end(`ok ${headers[':path']}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  });

  afterEach(async () => {
    client.destroy();
    await new Promise((resolve) => server.close(resolve));
  });

  const get = (path: string) =>
    new Promise<string>((resolve, reject) => {
      const req = client.request({ ':path': path });
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => (body += d));
      req.on('end', () => resolve(body));
      req.on('error', reject);
      req.end();
    });

  it('serves many concurrent streams and forgets each when it closes', async () => {
    const bodies = await Promise.all(Array.from({ length: 200 }, (_, i) => get(`/r${i}`)));
    expect(bodies).toEqual(Array.from({ length: 200 }, (_, i) => `ok /r${i}`));
    const table = sessionStreams(serverSession!) as StreamTable<http2.ServerHttp2Stream>;
    expect(table).toBeInstanceOf(StreamTable);
    expect(table.size).toBe(0);
  });

  it('lets a session be destroyed with streams still open, closing them', async () => {
    const hanging = client.request({ ':path': '/hang' });
    hanging.on('error', () => undefined);
    hanging.end();
    const table = await new Promise<StreamTable<http2.ServerHttp2Stream>>((resolve, reject) => {
      const until = Date.now() + 5_000;
      const wait = () => {
        const t = serverSession && (sessionStreams(serverSession) as StreamTable<http2.ServerHttp2Stream>);
        if (t?.size === 1) resolve(t);
        else if (Date.now() > until) reject(new Error('the hanging stream never reached the table'));
        else setTimeout(wait, 5);
      };
      wait();
    });
    const [open] = [...table.values()];
    const closed = new Promise((resolve) => open.on('close', resolve));
    serverSession!.destroy();
    await closed;
    expect(open.destroyed).toBe(true);
    expect(table.size).toBe(0);
  });
});

describe("keyward's gRPC servers", () => {
  const start = async (http2StreamTable: boolean) => {
    const servers = new GrpcServers({
      keyService: {} as KeyServiceServer,
      keyAdminService: {} as KeyAdminServiceServer,
      health: new HealthImplementation({ '': 'SERVING' }),
      logger: pino({ level: 'silent' }),
      http2StreamTable,
    });
    const { grpcAddr } = await servers.listen('127.0.0.1:0', '127.0.0.1:0');
    const health = new Client(grpcAddr, credentials.createInsecure());
    // grpc.health.v1.Health/Check for the server as a whole: an empty request; the answer's field 1 is the status
    const check = () =>
      new Promise<Buffer>((resolve, reject) =>
        health.makeUnaryRequest(
          '/grpc.health.v1.Health/Check',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.alloc(0),
          new Metadata(),
          (err, res) => (err ? reject(err) : resolve(res!)),
        ),
      );
    // the main listener's sessions, from grpc-js's private bookkeeping (test only)
    const sessions = () => [...((servers as unknown as { main: { sessions: Map<http2.ServerHttp2Session, unknown> } }).main.sessions.keys())];
    return { servers, health, check, sessions };
  };

  it('give every session of the main listener a stream table by default', async () => {
    const { servers, health, check, sessions } = await start(true);
    try {
      expect([...(await check())]).toEqual([0x08, 1]); // status: SERVING
      expect(sessions()).toHaveLength(1);
      expect(sessionStreams(sessions()[0])).toBeInstanceOf(StreamTable);
      expect(servers.streamTables?.stats).toEqual({ used: 1, skipped: 0 });
    } finally {
      health.close();
      await servers.shutdown(1_000);
    }
  });

  it('leave node:http2 its own Map with http2StreamTable false', async () => {
    const { servers, health, check, sessions } = await start(false);
    try {
      await check();
      expect(sessions()).toHaveLength(1);
      expect(types.isMap(sessionStreams(sessions()[0]))).toBe(true);
      expect(servers.streamTables).toBeUndefined();
    } finally {
      health.close();
      await servers.shutdown(1_000);
    }
  });
});
