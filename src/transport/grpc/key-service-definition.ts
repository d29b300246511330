import {
  KeyServiceService,
  ValidateKeyResponse,
  ValidateKeyStreamResponse,
} from '../../gen/keyward/v1/key_service.pb';
import { encodedBytesOf } from './encoded-answers';

/**
 * `keyward.v1.KeyService` as generated, except that ValidateKey and ValidateKeyStream answers
 * made by `EncodedAnswers` are written from their pre-encoded bytes instead of being encoded
 * again. Every other answer is encoded by the generated code, so the bytes on the wire are the
 * same either way.
 */
export const KeyServiceDefinition = {
  ...KeyServiceService,
  validateKey: {
    ...KeyServiceService.validateKey,
    responseSerialize: serializeAnswer,
  },
  validateKeyStream: {
    ...KeyServiceService.validateKeyStream,
    responseSerialize: serializeStreamAnswer,
  },
} as const;

export function serializeAnswer(value: ValidateKeyResponse): Buffer {
  return encodedBytesOf(value) ?? Buffer.from(ValidateKeyResponse.encode(value).finish());
}

/** Field 1 (`id`, varint, omitted when 0) then field 2 (`response`, the answer's bytes). */
export function serializeStreamAnswer(value: ValidateKeyStreamResponse): Buffer {
  const bytes = value.error === undefined && value.response !== undefined ? encodedBytesOf(value.response) : undefined;
  if (bytes === undefined) return Buffer.from(ValidateKeyStreamResponse.encode(value).finish());
  // tag + at most 10 varint bytes for the id, tag + at most 5 for the length, then the answer
  const out = Buffer.allocUnsafe(17 + bytes.length);
  let pos = 0;
  if (value.id !== 0) {
    out[pos++] = 0x08;
    pos = writeVarint(out, pos, value.id);
  }
  out[pos++] = 0x12;
  pos = writeVarint(out, pos, bytes.length);
  pos += bytes.copy(out, pos);
  return out.subarray(0, pos);
}

/**
 * A non-negative integer up to 2^53 as a protobuf varint. Arithmetic, not bit operations, which
 * would truncate ids above 2^31.
 */
function writeVarint(out: Buffer, pos: number, n: number): number {
  while (n >= 0x80) {
    out[pos++] = (n % 0x80) | 0x80;
    n = Math.floor(n / 0x80);
  }
  out[pos++] = n;
  return pos;
}
