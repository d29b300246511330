import { status, type sendUnaryData, type ServerDuplexStream, type ServerUnaryCall } from '@grpc/grpc-js';
import { KeyValidator, type ValidateInput } from '../../app/key-validator';
import { InvalidArgumentError, isKeywardError } from '../../domain/errors';
import { LIMITS } from '../../domain/input-rules';
import type { Decision } from '../../domain/validation';
import type {
  BatchValidateKeysRequest,
  BatchValidateKeysResponse,
  KeyServiceServer,
  ValidateKeyRequest,
  ValidateKeyResponse,
  ValidateKeyStreamError,
  ValidateKeyStreamRequest,
  ValidateKeyStreamResponse,
} from '../../gen/keyward/v1/key_service.pb';
import type { Logger } from '../../logger';
import { EncodedAnswers } from './encoded-answers';
import { isInternal, toServiceError } from './status';

export interface KeyServiceOptions {
  validator: KeyValidator;
  logger: Logger;
  /** Where VALID answers are pre-encoded once per record (a private one when omitted). */
  answers?: EncodedAnswers;
}

function toInput(req: ValidateKeyRequest): ValidateInput {
  return {
    key: req.key,
    service: req.service,
    requiredScopes: req.requiredScopes,
    clientIp: req.clientIp,
    cost: req.cost,
  };
}

/**
 * `keyward.v1.KeyService`: the hot path. A cache hit answers without creating a promise, and a
 * VALID answer is encoded once per record; register it with `KeyServiceDefinition`, whose
 * serializers write those bytes (the generated definition encodes the same answers again).
 */
export function createKeyService({ validator, logger, answers = new EncodedAnswers() }: KeyServiceOptions): KeyServiceServer {
  const toAnswer = (d: Decision) => answers.answer(d);
  const fail = (callback: sendUnaryData<never>, err: unknown) => {
    if (isInternal(err)) logger.error({ err }, 'validation failed');
    callback(toServiceError(err), null);
  };

  return {
    validateKey(call: ServerUnaryCall<ValidateKeyRequest, ValidateKeyResponse>, callback: sendUnaryData<ValidateKeyResponse>) {
      let result: Decision | Promise<Decision>;
      try {
        result = validator.validate(KeyValidator.checkRequest(toInput(call.request)));
      } catch (err) {
        return fail(callback, err);
      }
      if (result instanceof Promise) {
        result.then((d) => callback(null, toAnswer(d)), (err) => fail(callback, err));
      } else {
        callback(null, toAnswer(result));
      }
    },

    batchValidateKeys(
      call: ServerUnaryCall<BatchValidateKeysRequest, BatchValidateKeysResponse>,
      callback: sendUnaryData<BatchValidateKeysResponse>,
    ) {
      const requests = call.request.requests;
      try {
        if (requests.length > LIMITS.batchSize) {
          throw new InvalidArgumentError('requests', `at most ${LIMITS.batchSize} requests per batch`);
        }
        // Check every item first: a bad field anywhere rejects the whole batch.
        const inputs = requests.map((r, i) => KeyValidator.checkRequest(toInput(r), `requests[${i}].`));
        Promise.all(
          inputs.map(async (input) => {
            try {
              return await validator.validate(input);
            } catch (err) {
              // One unreachable lookup must not fail the other items.
              if (isInternal(err)) throw err;
              return { code: 'UNAVAILABLE', reason: 'store_unavailable' } satisfies Decision;
            }
          }),
        ).then(
          (decisions) => callback(null, { responses: decisions.map(toAnswer) }),
          (err) => fail(callback, err),
        );
      } catch (err) {
        fail(callback, err);
      }
    },

    validateKeyStream(call: ServerDuplexStream<ValidateKeyStreamRequest, ValidateKeyStreamResponse>) {
      let inflight = 0;
      let ended = false;
      const finish = () => {
        if (ended && inflight === 0) call.end();
      };
      const send = (msg: ValidateKeyStreamResponse) => {
        // Respect flow control: stop reading requests while the answers cannot be written.
        if (!call.write(msg)) {
          call.pause();
          call.once('drain', () => call.resume());
        }
      };
      const answerError = (id: number, err: unknown) => {
        if (isInternal(err)) logger.error({ err }, 'stream validation failed');
        send({ id, response: undefined, error: toStreamError(err) });
      };
      call.on('data', (msg: ValidateKeyStreamRequest) => {
        const id = msg.id;
        let result: Decision | Promise<Decision>;
        try {
          result = validator.validate(KeyValidator.checkRequest(toInput(msg.request ?? EMPTY_REQUEST)));
        } catch (err) {
          return answerError(id, err);
        }
        if (result instanceof Promise) {
          inflight++;
          result
            .then(
              (d) => send({ id, response: toAnswer(d), error: undefined }),
              (err) => answerError(id, err),
            )
            .finally(() => {
              inflight--;
              finish();
            });
        } else {
          send({ id, response: toAnswer(result), error: undefined });
        }
      });
      call.on('end', () => {
        ended = true;
        finish();
      });
      call.on('error', () => {
        // The client went away; in-flight answers are dropped by grpc-js.
      });
    },
  };
}

const EMPTY_REQUEST: ValidateKeyRequest = { key: '', requiredScopes: [], service: '', clientIp: '', cost: 0 };

function toStreamError(err: unknown): ValidateKeyStreamError {
  const { code, details } = toServiceError(err);
  return {
    code: status[code],
    message: details ?? '',
    field: isKeywardError(err) && 'field' in err && typeof err.field === 'string' ? err.field : '',
  };
}
