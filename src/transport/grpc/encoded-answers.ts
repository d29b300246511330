import { LRUCache } from 'lru-cache';
import { toValidateKeyResponse } from '../../codec/proto-mapping';
import type { Decision } from '../../domain/validation';
import { ValidateKeyResponse } from '../../gen/keyward/v1/key_service.pb';

/*
 * Pre-encoded VALID answers. A VALID decision without limits is a function of its record (and
 * its reason), so its wire bytes can be made once per record and reused by every call that finds
 * the same cached record: on the cached path, encoding the answer (key id, service, owner,
 * scopes, metadata, hint) was the largest piece of keyward's own work, and in the stream the
 * nested answer of every message was re-encoded.
 *
 * Only frozen records are worth it: the validation cache's records are frozen values shared by
 * every call until the key changes, while without a cache every call reads a new record from
 * the store, whose answer would be encoded, copied and kept for nothing (~2 µs more per call).
 *
 * The answer object is still what `toValidateKeyResponse` makes, so fields added to the answer
 * come along; its bytes ride on it under a symbol that only this module's serializers read
 * (any other encoder ignores them). Records are cached by object identity: a changed key is a
 * new record object, so it never gets an old answer.
 */

/**
 * Guard: the cache key is (record, reason). A new `Decision` field that the answer reads must be
 * part of that key (or exclude pre-encoding), so adding one stops the build here until it is
 * considered in `EncodedAnswers.answer`.
 */
type ConsideredDecisionFields = 'code' | 'reason' | 'record' | 'limits';
const decisionFieldsConsidered: Exclude<keyof Decision, ConsideredDecisionFields> extends never ? true : never = true;
void decisionFieldsConsidered;

const ENCODED: unique symbol = Symbol('keyward.encodedAnswer');

interface EncodedAnswer extends ValidateKeyResponse {
  readonly [ENCODED]: Buffer;
}

/** The pre-encoded bytes of an answer made by `EncodedAnswers`, else undefined. */
export function encodedBytesOf(answer: ValidateKeyResponse): Buffer | undefined {
  return (answer as Partial<EncodedAnswer>)[ENCODED];
}

export interface EncodedAnswersOptions {
  /** Most records whose answer is kept (least recently used go first); memory stays bounded. */
  maxEntries?: number;
}

export class EncodedAnswers {
  private readonly cache: LRUCache<object, EncodedAnswer>;

  constructor(opts: EncodedAnswersOptions = {}) {
    this.cache = new LRUCache({ max: opts.maxEntries ?? 4096 });
  }

  /** The wire answer of a decision: pre-encoded for VALID without limits, else mapped as usual. */
  answer(d: Decision): ValidateKeyResponse {
    const record = d.record;
    if (d.code !== 'VALID' || d.limits !== undefined || record === undefined || !Object.isFrozen(record)) return toValidateKeyResponse(d);
    const cached = this.cache.get(record);
    if (cached !== undefined && cached.reason === d.reason) return cached;
    const answer = encode(toValidateKeyResponse(d));
    this.cache.set(record, answer);
    return answer;
  }

  get size(): number {
    return this.cache.size;
  }
}

function encode(answer: ValidateKeyResponse): EncodedAnswer {
  const bytes = Buffer.from(ValidateKeyResponse.encode(answer).finish());
  // shared by every call that answers from this record: frozen so none can change it
  Object.defineProperty(answer, ENCODED, { value: bytes });
  return Object.freeze(answer) as EncodedAnswer;
}
