import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { Client, credentials, Metadata } from '@grpc/grpc-js';
import { HealthImplementation } from 'grpc-health-check';
import pino from 'pino';
import type { KeyAdminServiceServer } from '../../src/gen/keyward/v1/key_admin_service.pb';
import type { KeyServiceServer } from '../../src/gen/keyward/v1/key_service.pb';
import { responseOptionsUnsupported } from '../../src/transport/grpc/http2-response-options';
import { GrpcServers } from '../../src/transport/grpc/servers';
import { v8Natives } from '../unit/helpers/v8-natives';

/*
 * keyward's gRPC servers and grpc-js's response options in real node:http2 streams: after a few
 * calls the options object grpc-js passes to respond() is in dictionary mode, respond() is Node's
 * own again, and calls keep working; with the setting off, nothing is touched.
 */

const v8 = v8Natives();
const onNode20 = responseOptionsUnsupported() === undefined ? it : it.skip;

/** ServerHttp2Stream.prototype, from a stream of a plain node:http2 server (Node does not export the class). */
async function serverStreamPrototype(): Promise<{ respond: (...a: unknown[]) => unknown }> {
  const server = http2.createServer();
  const proto = new Promise<{ respond: (...a: unknown[]) => unknown }>((resolve) =>
    server.once('stream', (stream) => {
      resolve(Object.getPrototypeOf(stream));
      stream.respond({ ':status': 204 }, { endStream: true });
    }),
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const client = http2.connect(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  const req = client.request({ ':path': '/' });
  req.resume();
  req.end();
  const p = await proto;
  await new Promise((resolve) => req.on('close', resolve));
  client.close();
  await new Promise((resolve) => server.close(resolve));
  return p;
}

describe("keyward's gRPC servers and grpc-js's response options", () => {
  const start = async (http2ResponseOptions: boolean, Servers: typeof GrpcServers = GrpcServers) => {
    const servers = new Servers({
      keyService: {} as KeyServiceServer,
      keyAdminService: {} as KeyAdminServiceServer,
      health: new HealthImplementation({ '': 'SERVING' }),
      logger: pino({ level: 'silent' }),
      http2ResponseOptions,
    });
    const { grpcAddr } = await servers.listen('127.0.0.1:0', '127.0.0.1:0');
    const health = new Client(grpcAddr, credentials.createInsecure());
    const check = () =>
      new Promise<Buffer>((resolve, reject) =>
        health.makeUnaryRequest('/grpc.health.v1.Health/Check', (b: Buffer) => b, (b: Buffer) => b, Buffer.alloc(0), new Metadata(), (err, res) =>
          err ? reject(err) : resolve(res!),
        ),
      );
    return { servers, health, check };
  };

  /** The options object of the next respond() on any server stream. */
  const nextOptions = (proto: { respond: (...a: unknown[]) => unknown }) => {
    const original = proto.respond;
    return new Promise<unknown>((resolve) => {
      proto.respond = function (this: unknown, ...args: unknown[]) {
        proto.respond = original;
        resolve(args[1]);
        return original.apply(this, args);
      };
    });
  };

  onNode20('switch the shared options object to dictionary mode and put respond() back', async () => {
    const proto = await serverStreamPrototype();
    const nodeRespond = proto.respond;
    const { servers, health, check } = await start(true);
    try {
      for (let i = 0; i < 3; i++) expect([...(await check())]).toEqual([0x08, 1]); // SERVING
      expect(servers.responseOptions?.stats).toEqual({ normalized: 1, gaveUp: false });
      expect(proto.respond).toBe(nodeRespond);
      const seen = nextOptions(proto);
      await check();
      const options = (await seen) as object;
      expect(options).toEqual({ waitForTrailers: true });
      expect(v8.hasFastProperties(options)).toBe(false);
    } finally {
      health.close();
      await servers.shutdown(1_000);
    }
  });

  it('leave them alone with http2ResponseOptions false', async () => {
    const proto = await serverStreamPrototype();
    // a grpc-js of its own: the test above switched the options object of this file's grpc-js
    let Fresh: typeof GrpcServers | undefined;
    jest.isolateModules(() => {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      Fresh = (require('../../src/transport/grpc/servers') as typeof import('../../src/transport/grpc/servers')).GrpcServers;
    });
    const { servers, health, check } = await start(false, Fresh);
    try {
      const seen = nextOptions(proto);
      await check();
      await check();
      expect(servers.responseOptions).toBeUndefined();
      expect(v8.hasFastProperties((await seen) as object)).toBe(true);
    } finally {
      health.close();
      await servers.shutdown(1_000);
    }
  });
});
