import { HoldError } from './errors.ts';
import type { HoldErrorCode } from '../protocol/hold-api.ts';
import { StorageError, type StorageErrorCode } from './backends/types.ts';

const HOLD_CODE_FOR: Readonly<Record<StorageErrorCode, HoldErrorCode>> = Object.freeze({
  NOT_FOUND: 'BLOB_UNKNOWN',
  UPLOAD_UNKNOWN: 'UPLOAD_UNKNOWN',
  INVALID_PART: 'INVALID_PART',
  PART_TOO_SMALL: 'PART_TOO_SMALL',
  PRECONDITION_FAILED: 'UPLOAD_STATE_CONFLICT',
  UNSUPPORTED: 'UNSUPPORTED',
  UNAVAILABLE: 'BACKEND_UNAVAILABLE',
  INTERNAL: 'INTERNAL',
});

/** Storage errors become API errors here, so routes never see SDK details. */
export function toHoldError(err: unknown): unknown {
  if (!(err instanceof StorageError)) return err;
  const code = HOLD_CODE_FOR[err.code];
  return new HoldError(code, code === 'INTERNAL' ? undefined : err.message, { cause: err });
}

export async function mappingStorageErrors<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    throw toHoldError(err);
  }
}
