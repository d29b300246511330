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
 *
 * Prints one JSON line `{"port": N}` on stdout once listening on 127.0.0.1.
 */

const identity = (b: Buffer): Buffer => b;
/** ValidateKeyResponse{valid: true (field 1), code: VALIDATION_CODE_VALID = 1 (field 2)}. */
const VALID_RESPONSE = Buffer.from([0x08, 0x01, 0x10, 0x01]);

function main(): void {
  const mode = process.argv[2];
  if (mode !== 'unary' && mode !== 'stream') {
    process.stderr.write('usage: floor-server.js unary|stream\n');
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
