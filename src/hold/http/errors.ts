import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { HoldError } from '../errors.ts';
import type { HoldErrorCode } from '../../protocol/hold-api.ts';
import { toHoldError } from '../storage-errors.ts';

/** Framework errors (bad JSON, wrong content type, body too large) by status. */
const FRAMEWORK_CODES: Readonly<Record<number, HoldErrorCode>> = Object.freeze({
  400: 'INVALID_REQUEST',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
});

/** The one place an error becomes a response body. */
export function sendHoldError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const holdError = asHoldError(error);
  if (holdError.status >= 500) request.log.error({ err: error }, 'request failed');
  else request.log.info({ code: holdError.code }, 'request refused');
  return reply.code(holdError.status).type('application/json').send(holdError.toJSON());
}

function asHoldError(error: unknown): HoldError {
  const mapped = toHoldError(error);
  if (mapped instanceof HoldError) return mapped;
  const framework = mapped as FastifyError;
  const code = framework.statusCode !== undefined ? FRAMEWORK_CODES[framework.statusCode] : undefined;
  if (code) return new HoldError(code, code === 'INVALID_REQUEST' ? `the request body is not valid: ${framework.message}` : undefined);
  return new HoldError('INTERNAL');
}
