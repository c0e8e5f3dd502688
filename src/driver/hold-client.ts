import { Agent, request, type Dispatcher } from 'undici';
import type { ServiceTokenSigner } from '../core/service-token.ts';
import { HOLD_ENDPOINTS, isHoldErrorCode, type HoldCall, type HoldEndpointName, type HoldErrorCode, type HoldPart, type HoldResponse, type HoldStagedSegment } from '../protocol/hold-api.ts';
import { DEFAULT_RETRY, backoffDelay, isRetryableNetworkError, isRetryableStatus, sleep, type RetryPolicy } from './retry.ts';

/**
 * A typed client for the hold's JSON API. It signs a fresh service token per
 * call for the DID it acts as; it never sees storage credentials.
 */
export interface HoldClientOptions {
  /** The hold's base URL, e.g. `http://127.0.0.1:8080`. */
  url: string;
  /** The hold's identity, the `aud` of every token. */
  audience: string;
  signer: ServiceTokenSigner;
  dispatcher?: Dispatcher;
  /** Per-request timeout; complete and move get `longTimeoutMs`. */
  timeoutMs?: number;
  longTimeoutMs?: number;
  /** Retries for connection failures and 502/503/504 answers (a hold restarting). */
  retry?: RetryPolicy;
  /**
   * Check every answer against the contract (tests turn this on with
   * HOLDFAST_VALIDATE_HOLD_RESPONSES=1); a mismatch is a HoldClientError.
   */
  validateResponses?: boolean;
}


export class HoldClientError extends Error {
  /** A code from the contract; `UNKNOWN` for an answer without one, `INVALID_RESPONSE` for one that breaks the contract. */
  readonly code: HoldErrorCode | 'UNKNOWN' | 'INVALID_RESPONSE';
  readonly status: number;

  constructor(status: number, code: HoldClientError['code'], message: string) {
    super(message);
    this.name = 'HoldClientError';
    this.status = status;
    this.code = code;
  }
}

export class HoldClient {
  readonly #options: Required<Omit<HoldClientOptions, 'dispatcher'>> & { dispatcher: Dispatcher };
  readonly #ownsDispatcher: boolean;

  constructor(options: HoldClientOptions) {
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#options = {
      timeoutMs: 30_000,
      longTimeoutMs: 15 * 60_000,
      retry: DEFAULT_RETRY,
      validateResponses: process.env.HOLDFAST_VALIDATE_HOLD_RESPONSES === '1',
      ...options,
      url: options.url.replace(/\/+$/, ''),
      dispatcher: options.dispatcher ?? new Agent({ connections: 64, keepAliveTimeout: 10_000 }),
    };
  }

  startMultipart(did: string, options: { digest?: string; clientState?: Record<string, unknown>; presignParts?: number } = {}) {
    return this.send('startMultipart', did, {
      ...(options.digest ? { digest: options.digest } : {}),
      ...(options.clientState ? { client_state: options.clientState } : {}),
      ...(options.presignParts ? { presign_parts: options.presignParts } : {}),
    });
  }

  partPresignedUrl(did: string, uploadName: string, uploadId: string, partNumber: number, epoch?: number) {
    return this.send('partPresignedUrl', did, { digest: uploadName, upload_id: uploadId, part_number: partNumber, ...epochField(epoch) });
  }

  completeMultipart(did: string, uploadName: string, uploadId: string, parts: readonly { part_number: number; etag: string; size?: number }[], epoch?: number) {
    return this.send('completeMultipart', did, { digest: uploadName, upload_id: uploadId, parts: [...parts], ...epochField(epoch) });
  }

  abortMultipart(did: string, uploadName: string, uploadId: string, epoch?: number) {
    return this.send('abortMultipart', did, { digest: uploadName, upload_id: uploadId, ...epochField(epoch) });
  }

  putPresignedUrl(did: string, digest: string, staged?: { uploadId: string; offset: number; epoch?: number }) {
    return this.send('putPresignedUrl', did, staged ? { digest, upload_id: staged.uploadId, offset: staged.offset, ...epochField(staged.epoch) } : { digest });
  }

  getPresignedUrl(did: string, digest: string, options: { method?: 'GET' | 'HEAD'; uploadId?: string; offset?: number } = {}) {
    return this.send('getPresignedUrl', did, {
      digest,
      ...(options.method ? { method: options.method } : {}),
      ...(options.uploadId ? { upload_id: options.uploadId } : {}),
      ...(options.offset !== undefined ? { offset: options.offset } : {}),
    });
  }

  /** With `parts`, the hold completes the multipart upload and publishes it in one call. */
  move(did: string, from: string, to: string, options: { size?: number; parts?: readonly HoldPart[]; epoch?: number } = {}) {
    return this.send('move', did, {
      from,
      to,
      ...(options.size !== undefined ? { size: options.size } : {}),
      ...(options.parts ? { parts: [...options.parts] } : {}),
      ...epochField(options.epoch),
    });
  }

  claim(did: string, digest: string) {
    return this.send('claim', did, { digest });
  }

  release(did: string, digest: string) {
    return this.send('release', did, { digest });
  }

  stat(did: string, digest: string) {
    return this.send('stat', did, { digest });
  }

  delete(did: string, digest: string) {
    return this.send('delete', did, { digest });
  }

  /** With `takeOver`, the caller records that it took the upload over as that writer epoch. */
  uploadStatus(did: string, uploadName: string, uploadId: string, options: { presignParts?: number; takeOver?: number } = {}) {
    return this.send('uploadStatus', did, {
      digest: uploadName,
      upload_id: uploadId,
      ...(options.presignParts ? { presign_parts: options.presignParts } : {}),
      ...epochField(options.takeOver),
    });
  }

  uploadProgress(
    did: string,
    uploadName: string,
    uploadId: string,
    progress: { base_size: number; parts?: HoldPart[]; staged?: HoldStagedSegment[]; client_state?: Record<string, unknown>; presign_parts?: number },
    epoch?: number,
  ) {
    return this.send('uploadProgress', did, { digest: uploadName, upload_id: uploadId, ...progress, ...epochField(epoch) });
  }

  /** One endpoint of the contract: its path, its timeout, and (when asked) its answer checked. */
  async send<K extends HoldEndpointName>(name: K, did: string, body: HoldCall<K>): Promise<HoldResponse<K>> {
    const endpoint = HOLD_ENDPOINTS[name];
    const answer = await this.call<unknown>(endpoint.path, did, body as Record<string, unknown>, endpoint.long === true);
    if (!this.#options.validateResponses) return answer as HoldResponse<K>;
    const checked = endpoint.response.safeParse(answer);
    if (!checked.success) throw new HoldClientError(200, 'INVALID_RESPONSE', `${endpoint.path} answered outside the contract: ${checked.error.message}`);
    return checked.data as HoldResponse<K>;
  }

  /**
   * Posts `body` (with `did` added) to `path`; throws `HoldClientError` on a
   * non-2xx answer. Connection failures and 502/503/504 are retried with
   * backoff; every hold endpoint is safe to repeat (see docs/PRESIGNED_URLS.md).
   */
  async call<T>(path: string, did: string, body: Record<string, unknown>, long = false): Promise<T> {
    const { retry } = this.#options;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.#callOnce<T>(path, did, body, long);
      } catch (err) {
        const retryable = err instanceof HoldClientError ? isRetryableStatus(err.status) && err.status !== 500 : isRetryableNetworkError(err);
        if (!retryable || attempt + 1 >= retry.attempts) throw err;
        await sleep(backoffDelay(retry, attempt));
      }
    }
  }

  async #callOnce<T>(path: string, did: string, body: Record<string, unknown>, long: boolean): Promise<T> {
    const token = await this.#options.signer.sign(did, this.#options.audience);
    const timeout = long ? this.#options.longTimeoutMs : this.#options.timeoutMs;
    const response = await request(`${this.#options.url}${path}`, {
      method: 'POST',
      dispatcher: this.#options.dispatcher,
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ did, ...body }),
      headersTimeout: timeout,
      bodyTimeout: timeout,
    });
    const text = await response.body.text();
    const parsed = text ? (safeJson(text) as Record<string, unknown> | undefined) : undefined;
    if (response.statusCode >= 200 && response.statusCode < 300) return (parsed ?? {}) as T;
    const error = (parsed?.error ?? {}) as { code?: unknown; message?: string };
    throw new HoldClientError(response.statusCode, isHoldErrorCode(error.code) ? error.code : 'UNKNOWN', error.message ?? `hold answered HTTP ${response.statusCode}`);
  }

  async close(): Promise<void> {
    if (this.#ownsDispatcher) await this.#options.dispatcher.close();
  }
}

/** A call without `writer_epoch` names 0, the epoch of an upload no request has taken yet. */
function epochField(epoch: number | undefined): { writer_epoch?: number } {
  return epoch === undefined || epoch === 0 ? {} : { writer_epoch: epoch };
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
