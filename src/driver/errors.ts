import type { HoldErrorCode } from '../protocol/hold-api.ts';
import { HoldClientError } from './hold-client.ts';
import { BudgetTimeoutError } from './memory-budget.ts';
import { DriverError, type DriverErrorCode } from './types.ts';

const DRIVER_CODE_FOR: Readonly<Partial<Record<HoldErrorCode, DriverErrorCode>>> = Object.freeze({
  UPLOAD_UNKNOWN: 'BLOB_UPLOAD_UNKNOWN',
  BLOB_UNKNOWN: 'BLOB_UNKNOWN',
  DIGEST_INVALID: 'DIGEST_INVALID',
  SIZE_INVALID: 'SIZE_INVALID',
  RANGE_INVALID: 'RANGE_INVALID',
  UPLOAD_STATE_CONFLICT: 'BLOB_UPLOAD_INVALID',
  UPLOAD_NOT_COMPLETE: 'BLOB_UPLOAD_INVALID',
  // The storage holds other parts than the ones recorded (a writer that lost the upload sent one late): start the upload again.
  INVALID_PART: 'BLOB_UPLOAD_INVALID',
  DENIED: 'DENIED',
  UNAUTHORIZED: 'DENIED',
  BACKEND_UNAVAILABLE: 'UNAVAILABLE',
  // The provider cannot do it (a move over 5 GiB on Storj): retrying will not help.
  UNSUPPORTED: 'UNSUPPORTED',
});

/** True when `err` is the hold's answer with one of `codes` (any code when none are given). */
export function isHoldError(err: unknown, ...codes: readonly HoldClientError['code'][]): err is HoldClientError {
  return err instanceof HoldClientError && (codes.length === 0 || codes.includes(err.code));
}

/** Hold client errors become driver errors; the registry maps those to OCI codes. */
export function toDriverError(err: unknown): unknown {
  if (err instanceof BudgetTimeoutError) return new DriverError('BUSY', err.message, { cause: err });
  if (!(err instanceof HoldClientError)) return err;
  const code = (err.code === 'UNKNOWN' || err.code === 'INVALID_RESPONSE' ? undefined : DRIVER_CODE_FOR[err.code]) ?? (err.status >= 500 ? 'UNAVAILABLE' : 'INTERNAL');
  return new DriverError(code, err.message, { cause: err });
}

export async function mappingHoldErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw toDriverError(err);
  }
}
