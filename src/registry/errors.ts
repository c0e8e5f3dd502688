/**
 * The OCI distribution-spec error codes, with their HTTP statuses, in one
 * table. Handlers throw `RegistryError`; one function writes
 * `{"errors":[{code,message,detail}]}`.
 */
export const OCI_ERRORS = Object.freeze({
  BLOB_UNKNOWN: { status: 404, message: 'blob unknown to registry' },
  BLOB_UPLOAD_INVALID: { status: 400, message: 'blob upload invalid' },
  BLOB_UPLOAD_UNKNOWN: { status: 404, message: 'blob upload unknown to registry' },
  DIGEST_INVALID: { status: 400, message: 'provided digest did not match uploaded content' },
  MANIFEST_BLOB_UNKNOWN: { status: 400, message: 'manifest references a manifest or blob unknown to registry' }, // 400 as distribution sends it
  MANIFEST_INVALID: { status: 400, message: 'manifest invalid' },
  MANIFEST_UNKNOWN: { status: 404, message: 'manifest unknown to registry' },
  NAME_INVALID: { status: 400, message: 'invalid repository name' },
  NAME_UNKNOWN: { status: 404, message: 'repository name not known to registry' },
  SIZE_INVALID: { status: 400, message: 'provided length did not match content length' },
  UNAUTHORIZED: { status: 401, message: 'authentication required' },
  DENIED: { status: 403, message: 'requested access to the resource is denied' },
  UNSUPPORTED: { status: 405, message: 'the operation is unsupported' },
  TOOMANYREQUESTS: { status: 429, message: 'too many requests' },
  // Not spec codes, but the statuses the spec requires for these cases.
  RANGE_INVALID: { status: 416, message: 'requested range not satisfiable' },
  MANIFEST_TOO_LARGE: { status: 413, message: 'manifest exceeds the 4 MiB limit' },
  REQUEST_INVALID: { status: 400, message: 'request invalid' },
  REQUEST_TOO_LARGE: { status: 413, message: 'request body too large' },
  UNAVAILABLE: { status: 503, message: 'storage is unavailable; retry later' },
  INTERNAL: { status: 500, message: 'internal error' },
} as const);

export type OciErrorCode = keyof typeof OCI_ERRORS;

export class RegistryError extends Error {
  readonly code: OciErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Extra response headers (e.g. `Range` on a 416, `WWW-Authenticate` on a 401). */
  readonly headers: Record<string, string>;

  constructor(code: OciErrorCode, message?: string, options: { detail?: unknown; headers?: Record<string, string>; cause?: unknown } = {}) {
    super(message ?? OCI_ERRORS[code].message, { cause: options.cause });
    this.name = 'RegistryError';
    this.code = code;
    this.status = OCI_ERRORS[code].status;
    this.detail = options.detail;
    this.headers = options.headers ?? {};
  }

  toJSON(): { errors: { code: string; message: string; detail?: unknown }[] } {
    return { errors: [{ code: this.code, message: this.message, ...(this.detail !== undefined ? { detail: this.detail } : {}) }] };
  }
}
