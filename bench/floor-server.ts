import { createServer, constants as h2 } from 'node:http2';
import { Server, ServerCredentials, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData } from '@grpc/grpc-js';

/**
 * The floors: bare grpc-js servers that do no work, run as their own process, at keyward's
 * method paths. What keyward reaches against them is the cost of keyward's own code.
 *
 *   node floor-server.js unary   /keyward.v1.KeyService/ValidateKey answers a fixed, pre-encoded
 *                                ValidateKeyResponse {valid: true, code: VALID}; the request is
 *                                not decoded (identity deserializer).
 *   node floor-server.js stream  /keyward.v1.KeyService/ValidateKeyStream echoes every message
 *                                back as it arrives (identity serializers).
 *   node floor-server.js http2   below the floor: Node's own node:http2 server, no grpc-js, reads
 *                                each request to its end and writes the unary floor's answer
 *                                bytes (headers, one DATA frame, grpc-status trailers). The
 *                                latency scenario measures it to show what Node's HTTP/2 layer
 *                                and V8's GC cost on their own.
 *
 * Prints one JSON line `{"port": N}` on stdout once listening on 127.0.0.1.
 */

const identity = (b: Buffer): Buffer => b;
/** ValidateKeyResponse{valid: true (field 1), code: VALIDATION_CODE_VALID = 1 (field 2)}. */
const VALID_RESPONSE = Buffer.from([0x08, 0x01, 0x10, 0x01]);

/** The unary floor's answer as a gRPC frame: flag 0, length 4, VALID_RESPONSE. */
const VALID_FRAME = Buffer.concat([Buffer.from([0, 0, 0, 0, VALID_RESPONSE.length]), VALID_RESPONSE]);

function http2Floor(): void {
  const server = createServer();
  server.on('stream', (stream) => {
    stream.on('data', () => {});
    stream.on('end', () => {
      stream.respond({ [h2.HTTP2_HEADER_STATUS]: 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end(VALID_FRAME);
    });
    stream.on('error', () => {});
  });
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    process.stdout.write(`${JSON.stringify({ port: typeof address === 'object' && address ? address.port : 0 })}\n`);
  });
  process.on('SIGTERM', () => process.exit(0));
}

function main(): void {
  const mode = process.argv[2];
  if (mode === 'http2') return http2Floor();
  if (mode !== 'unary' && mode !== 'stream') {
    process.stderr.write('usage: floor-server.js unary|stream|http2\n');
    process.exit(2);
  }
  const server = new Server();
  if (mode === 'unary') {
    server.addService(
      {
        ValidateKey: {
          path: '/keyward.v1.KeyService/ValidateKey',
          requestStream: false,
          responseStream: false,
          requestSerialize: identity,
          requestDeserialize: identity,
          responseSerialize: identity,
          responseDeserialize: identity,
        },
      },
      {
        ValidateKey: (_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) => callback(null, VALID_RESPONSE),
      },
    );
  } else {
    server.addService(
      {
        ValidateKeyStream: {
          path: '/keyward.v1.KeyService/ValidateKeyStream',
          requestStream: true,
          responseStream: true,
          requestSerialize: identity,
          requestDeserialize: identity,
          responseSerialize: identity,
          responseDeserialize: identity,
        },
      },
      {
        ValidateKeyStream: (call: ServerDuplexStream<Buffer, Buffer>) => {
          // Same flow-control discipline as keyward: stop reading while the answers cannot be written.
          call.on('data', (msg: Buffer) => {
            if (!call.write(msg)) {
              call.pause();
              call.once('drain', () => call.resume());
            }
          });
          call.on('end', () => call.end());
          call.on('error', () => {});
        },
      },
    );
  }
  server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) => {
    if (err) {
      process.stderr.write(`floor-server: ${err.message}\n`);
      process.exit(1);
    }
    process.stdout.write(`${JSON.stringify({ port })}\n`);
  });
  process.on('SIGTERM', () => {
    server.forceShutdown();
    process.exit(0);
  });
}

main();
