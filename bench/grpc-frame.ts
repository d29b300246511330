import { writeFileSync } from 'node:fs';

/**
 * gRPC's length-prefixed message framing: a 1-byte compressed flag (0), a 4-byte big-endian
 * length, then the protobuf message. An HTTP/2 request body made of such frames is exactly what
 * a gRPC client sends, so h2load can replay it byte for byte.
 */
export function grpcFrame(message: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(5 + message.length);
  frame.writeUInt8(0, 0);
  frame.writeUInt32BE(message.length, 1);
  frame.set(message, 5);
  return frame;
}

/** Several messages framed back to back: the request body of a client-streaming call. */
export function grpcFrames(messages: readonly Uint8Array[]): Buffer {
  return Buffer.concat(messages.map(grpcFrame));
}

/** Writes a pre-encoded body to `path` for `h2load -d`. Returns its size in bytes. */
export function writeFrameFile(path: string, body: Buffer): number {
  writeFileSync(path, body);
  return body.length;
}
