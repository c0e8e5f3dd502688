import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * HMAC-signed, short-lived URLs for the filesystem backend, so the driver's
 * code path (PUT parts to a URL, GET a URL) is the same as with S3.
 *
 * A URL names an operation and its target; the signature covers both and the
 * expiry, so a URL for one part cannot be replayed against another.
 */
export type SignedOperation =
  | { op: 'put-object'; key: string }
  | { op: 'get-object'; key: string }
  | { op: 'head-object'; key: string }
  | { op: 'put-part'; uploadId: string; partNumber: number };

export class FsUrlSigner {
  readonly #secret: Buffer;
  readonly #baseUrl: string;

  constructor(baseUrl: string, secret?: string) {
    this.#baseUrl = baseUrl.replace(/\/+$/, '');
    this.#secret = secret ? Buffer.from(secret, 'utf8') : randomBytes(32);
  }

  sign(operation: SignedOperation, expiresAt: Date): string {
    const expires = Math.floor(expiresAt.getTime() / 1000);
    const signature = this.#mac(operation, expires);
    const query = `X-Holdfast-Expires=${expires}&X-Holdfast-Signature=${signature}`;
    return `${this.#baseUrl}${pathFor(operation)}?${query}`;
  }

  /** True when `signature` is valid for `operation` and has not expired. */
  verify(operation: SignedOperation, expires: string | undefined, signature: string | undefined, now = Date.now()): boolean {
    if (!expires || !signature || !/^\d{1,12}$/.test(expires) || !/^[a-f0-9]{64}$/.test(signature)) return false;
    const expected = Buffer.from(this.#mac(operation, Number(expires)), 'hex');
    const given = Buffer.from(signature, 'hex');
    if (!timingSafeEqual(expected, given)) return false;
    return Number(expires) * 1000 >= now;
  }

  #mac(operation: SignedOperation, expires: number): string {
    const target = operation.op === 'put-part' ? `${operation.uploadId}\n${operation.partNumber}` : operation.key;
    return createHmac('sha256', this.#secret).update(`${operation.op}\n${target}\n${expires}`).digest('hex');
  }
}

export const FS_ROUTE_PREFIX = '/_fs';

function pathFor(operation: SignedOperation): string {
  switch (operation.op) {
    case 'put-part':
      return `${FS_ROUTE_PREFIX}/parts/${operation.uploadId}/${operation.partNumber}`;
    default:
      return `${FS_ROUTE_PREFIX}/objects/${operation.key}`;
  }
}
