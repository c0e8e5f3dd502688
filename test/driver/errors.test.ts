import { expect } from 'chai';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { isHoldError, toDriverError } from '../../src/driver/errors.ts';
import { HoldClientError } from '../../src/driver/hold-client.ts';
import { DriverError, isDriverError } from '../../src/driver/types.ts';
import { sendRegistryError } from '../../src/registry/http/app.ts';

/** What `sendRegistryError` answered: status and body. */
function registryAnswer(error: unknown): { status: number; body: { errors: { code: string }[] } } {
  const answer = { status: 0, body: undefined as unknown };
  const reply = {
    sent: false,
    raw: { headersSent: false },
    header: () => reply,
    code: (status: number) => ((answer.status = status), reply),
    type: () => reply,
    send: (body: unknown) => ((answer.body = body), reply),
  };
  const request = { log: { info: () => {}, error: () => {} } };
  sendRegistryError(error, request as unknown as FastifyRequest, reply as unknown as FastifyReply);
  return answer as { status: number; body: { errors: { code: string }[] } };
}

describe('driver errors across module boundaries', function () {
  it('tells hold and driver errors by class and code', function () {
    const hold = new HoldClientError(404, 'UPLOAD_UNKNOWN', 'no such upload');
    expect(isHoldError(hold, 'UPLOAD_UNKNOWN')).to.equal(true);
    expect(isHoldError(hold, 'UPLOAD_STATE_CONFLICT', 'UPLOAD_UNKNOWN')).to.equal(true);
    expect(isHoldError(hold, 'BLOB_UNKNOWN')).to.equal(false);
    expect(isHoldError(Object.assign(new Error('lookalike'), { code: 'UPLOAD_UNKNOWN' }), 'UPLOAD_UNKNOWN')).to.equal(false);
    const driver = new DriverError('SIZE_INVALID', 'short');
    expect(isDriverError(driver, 'DIGEST_INVALID', 'SIZE_INVALID')).to.equal(true);
    expect(isDriverError(driver, 'DIGEST_INVALID')).to.equal(false);
    expect(isDriverError(hold)).to.equal(false);
    expect(isDriverError(Object.assign(new Error('lookalike'), { code: 'DIGEST_INVALID' }), 'DIGEST_INVALID')).to.equal(false);
  });

  it("answers a hold's 501 UNSUPPORTED as OCI UNSUPPORTED (405), not a retryable 503", function () {
    const driver = toDriverError(new HoldClientError(501, 'UNSUPPORTED', 'the storage provider does not support this operation'));
    expect(isDriverError(driver, 'UNSUPPORTED')).to.equal(true);
    const answer = registryAnswer(driver);
    expect(answer.status).to.equal(405);
    expect(answer.body.errors[0]?.code).to.equal('UNSUPPORTED');
  });

  it('keeps a 5xx without a contract code retryable: 503 UNAVAILABLE', function () {
    const answer = registryAnswer(toDriverError(new HoldClientError(502, 'UNKNOWN', 'bad gateway')));
    expect(answer.status).to.equal(503);
    expect(answer.body.errors[0]?.code).to.equal('UNAVAILABLE');
  });
});
