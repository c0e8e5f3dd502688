import { HOLD_ERRORS, type HoldErrorCode } from '../protocol/hold-api.ts';


/**
 * A route throws a `HoldError`; the HTTP layer turns it into
 * `{"error":{"code":"…","message":"…"}}` with the contract's status.
 */
export class HoldError extends Error {
  readonly code: HoldErrorCode;
  readonly status: number;

  constructor(code: HoldErrorCode, message?: string, options?: { cause?: unknown }) {
    super(message ?? HOLD_ERRORS[code].message, options);
    this.name = 'HoldError';
    this.code = code;
    this.status = HOLD_ERRORS[code].status;
  }

  toJSON(): { error: { code: HoldErrorCode; message: string } } {
    return { error: { code: this.code, message: this.message } };
  }
}
