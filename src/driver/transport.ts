import type { Readable } from 'node:stream';
import { request, type Dispatcher } from 'undici';
import { DriverError } from './types.ts';
import { backoffDelay, isRetryableNetworkError, isRetryableStatus, sleep, type RetryPolicy } from './retry.ts';

export interface TransportOptions {
  dispatcher: Dispatcher;
  retry: RetryPolicy;
  /** Headers and body timeout for one part PUT or GET. */
  timeoutMs: number;
  /** Observes every byte-carrying request (for tests and benchmarks). */
  onRequest?: (event: StorageRequestEvent) => void;
}

export interface StorageRequestEvent {
  method: 'PUT' | 'GET';
  /** What a PUT carried: a multipart part or a staged tail segment. */
  kind: 'part' | 'staged' | 'read';
  bytes: number;
  status: number | 'error';
  attempt: number;
}

/** Resolves to a presigned URL; `fresh` asks for a new one (the last was refused). */
export type UrlSource = (fresh: boolean) => Promise<string>;

/**
 * Moves bytes to and from presigned URLs, with retries: 5xx, 429 (SlowDown),
 * connection resets and timeouts back off and try again; a 403 (an expired
 * URL) asks for a fresh URL. Failures that outlast the retries become typed
 * `DriverError`s; nothing hangs past `timeoutMs` per attempt.
 */
export class Transport {
  readonly #options: TransportOptions;

  constructor(options: TransportOptions) {
    this.#options = options;
  }

  /** PUTs `body`; resolves to the ETag S3 returned. */
  async put(urls: UrlSource, body: Uint8Array, kind: 'part' | 'staged', signal?: AbortSignal): Promise<string> {
    let refresh = false;
    let lastProblem = 'no attempt made';
    for (let attempt = 0; attempt < this.#options.retry.attempts; attempt++) {
      signal?.throwIfAborted();
      if (attempt > 0) await sleep(backoffDelay(this.#options.retry, attempt - 1), signal);
      const url = await urls(refresh);
      refresh = false;
      try {
        const response = await request(url, {
          method: 'PUT',
          body,
          headers: { 'content-length': String(body.length) },
          dispatcher: this.#options.dispatcher,
          headersTimeout: this.#options.timeoutMs,
          bodyTimeout: this.#options.timeoutMs,
          signal,
        });
        const text = await response.body.text();
        this.#options.onRequest?.({ method: 'PUT', kind, bytes: body.length, status: response.statusCode, attempt });
        if (response.statusCode === 200) {
          const etag = response.headers.etag;
          if (typeof etag === 'string' && etag !== '') return etag;
          lastProblem = 'the storage answered 200 without an ETag';
          continue;
        }
        lastProblem = `the storage answered ${response.statusCode}${s3Code(text)}`;
        if (response.statusCode === 403) refresh = true;
        else if (!isRetryableStatus(response.statusCode)) break;
      } catch (err) {
        if (signal?.aborted) throw signal.reason;
        this.#options.onRequest?.({ method: 'PUT', kind, bytes: body.length, status: 'error', attempt });
        if (!isRetryableNetworkError(err)) throw new DriverError('UNAVAILABLE', `upload failed: ${(err as Error).message}`, { cause: err });
        lastProblem = `connection failed (${(err as { code?: string }).code ?? 'error'})`;
      }
    }
    throw new DriverError('UNAVAILABLE', `upload of ${body.length} bytes failed after retries: ${lastProblem}`);
  }

  /** GETs the whole object (or a range) into memory; for staged tails. */
  async getBytes(urls: UrlSource, expectedSize: number, signal?: AbortSignal): Promise<Buffer> {
    const stream = await this.getStream(urls, undefined, signal);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    const bytes = Buffer.concat(chunks);
    if (bytes.length !== expectedSize) {
      throw new DriverError('UNAVAILABLE', `read ${bytes.length} bytes of a ${expectedSize}-byte staged segment`);
    }
    return bytes;
  }

  /** Opens a GET stream, retrying until the response starts. */
  async getStream(urls: UrlSource, range?: { start: number; end: number }, signal?: AbortSignal): Promise<Readable> {
    let refresh = false;
    let lastProblem = 'no attempt made';
    for (let attempt = 0; attempt < this.#options.retry.attempts; attempt++) {
      if (attempt > 0) await sleep(backoffDelay(this.#options.retry, attempt - 1), signal);
      const url = await urls(refresh);
      refresh = false;
      try {
        const response = await request(url, {
          method: 'GET',
          headers: range ? { range: `bytes=${range.start}-${range.end}` } : {},
          dispatcher: this.#options.dispatcher,
          headersTimeout: this.#options.timeoutMs,
          bodyTimeout: this.#options.timeoutMs,
          signal,
        });
        this.#options.onRequest?.({ method: 'GET', kind: 'read', bytes: 0, status: response.statusCode, attempt });
        if (response.statusCode === 200 || response.statusCode === 206) return response.body;
        const text = await response.body.text();
        if (response.statusCode === 404) throw new DriverError('BLOB_UNKNOWN', 'no object at that digest');
        if (response.statusCode === 416) throw new DriverError('RANGE_INVALID', 'the requested range is not satisfiable');
        lastProblem = `the storage answered ${response.statusCode}${s3Code(text)}`;
        if (response.statusCode === 403) refresh = true;
        else if (!isRetryableStatus(response.statusCode)) break;
      } catch (err) {
        if (err instanceof DriverError) throw err;
        if (signal?.aborted) throw signal.reason;
        if (!isRetryableNetworkError(err)) throw new DriverError('UNAVAILABLE', `download failed: ${(err as Error).message}`, { cause: err });
        lastProblem = `connection failed (${(err as { code?: string }).code ?? 'error'})`;
      }
    }
    throw new DriverError('UNAVAILABLE', `download failed after retries: ${lastProblem}`);
  }
}

/** S3 error code from an XML error body, e.g. " (SlowDown)". */
function s3Code(body: string): string {
  const code = /<Code>([^<]{1,64})<\/Code>/.exec(body)?.[1] ?? (/"code":"([A-Z_]{1,64})"/.exec(body)?.[1] ?? '');
  return code ? ` (${code})` : '';
}
