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
  /** Sent while its bytes still arrived (`putStreaming`). */
  streamed?: true;
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
    const event = { method: 'PUT', kind, bytes: body.length } as const;
    const describe = {
      verb: 'upload',
      failed: `upload of ${body.length} bytes failed`,
      onError: (attempt: number) => this.#options.onRequest?.({ ...event, status: 'error', attempt }),
    };
    return this.#withRetries(urls, signal, describe, async (url, attempt) => {
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
      this.#options.onRequest?.({ ...event, status: response.statusCode, attempt });
      if (response.statusCode !== 200) return unsuccessful(response.statusCode, text);
      const etag = response.headers.etag;
      if (typeof etag === 'string' && etag !== '') return { kind: 'done', value: etag };
      return { kind: 'retry', problem: 'the storage answered 200 without an ETag' };
    });
  }

  /**
   * PUTs `length` bytes as `body` yields them, in one attempt (a stream
   * cannot be sent twice): the caller keeps the bytes and falls back to
   * `put`. Resolves to the ETag.
   */
  async putStreaming(url: string, body: Readable, length: number, signal?: AbortSignal): Promise<string> {
    const event = { method: 'PUT', kind: 'part', bytes: length, streamed: true } as const;
    try {
      const response = await request(url, {
        method: 'PUT',
        body,
        headers: { 'content-length': String(length) },
        dispatcher: this.#options.dispatcher,
        headersTimeout: this.#options.timeoutMs,
        bodyTimeout: this.#options.timeoutMs,
        signal,
      });
      const text = await response.body.text();
      this.#options.onRequest?.({ ...event, status: response.statusCode, attempt: 0 });
      const etag = response.headers.etag;
      if (response.statusCode === 200 && typeof etag === 'string' && etag !== '') return etag;
      throw new DriverError('UNAVAILABLE', `streamed upload answered ${response.statusCode}${s3Code(text)}`);
    } catch (err) {
      if (!(err instanceof DriverError)) this.#options.onRequest?.({ ...event, status: 'error', attempt: 0 });
      throw err;
    }
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
    return this.#withRetries(urls, signal, { verb: 'download', failed: 'download failed' }, async (url, attempt) => {
      const response = await request(url, {
        method: 'GET',
        headers: range ? { range: `bytes=${range.start}-${range.end}` } : {},
        dispatcher: this.#options.dispatcher,
        headersTimeout: this.#options.timeoutMs,
        bodyTimeout: this.#options.timeoutMs,
        signal,
      });
      this.#options.onRequest?.({ method: 'GET', kind: 'read', bytes: 0, status: response.statusCode, attempt });
      if (response.statusCode === 200 || response.statusCode === 206) return { kind: 'done', value: response.body };
      const text = await response.body.text();
      if (response.statusCode === 404) throw new DriverError('BLOB_UNKNOWN', 'no object at that digest');
      if (response.statusCode === 416) throw new DriverError('RANGE_INVALID', 'the requested range is not satisfiable');
      return unsuccessful(response.statusCode, text);
    });
  }

  /**
   * Runs `send` against a URL from `urls` until it is done, with backoff
   * between attempts: a fresh URL after a refusal, another try after a
   * retryable answer or connection failure. A `DriverError` from `send` ends
   * it at once.
   */
  async #withRetries<T>(
    urls: UrlSource,
    signal: AbortSignal | undefined,
    describe: { verb: string; failed: string; onError?: (attempt: number) => void },
    send: (url: string, attempt: number) => Promise<Attempt<T>>,
  ): Promise<T> {
    let refresh = false;
    let lastProblem = 'no attempt made';
    for (let attempt = 0; attempt < this.#options.retry.attempts; attempt++) {
      signal?.throwIfAborted();
      if (attempt > 0) await sleep(backoffDelay(this.#options.retry, attempt - 1), signal);
      const url = await urls(refresh);
      refresh = false;
      try {
        const outcome = await send(url, attempt);
        if (outcome.kind === 'done') return outcome.value;
        lastProblem = outcome.problem;
        if (outcome.kind === 'refresh') refresh = true;
        else if (outcome.kind === 'give-up') break;
      } catch (err) {
        if (err instanceof DriverError) throw err;
        if (signal?.aborted) throw signal.reason;
        describe.onError?.(attempt);
        if (!isRetryableNetworkError(err)) throw new DriverError('UNAVAILABLE', `${describe.verb} failed: ${(err as Error).message}`, { cause: err });
        lastProblem = `connection failed (${(err as { code?: string }).code ?? 'error'})`;
      }
    }
    throw new DriverError('UNAVAILABLE', `${describe.failed} after retries: ${lastProblem}`);
  }
}

/** What one attempt came to: a result, or why not and whether trying again can help. */
type Attempt<T> = { kind: 'done'; value: T } | { kind: 'retry' | 'refresh' | 'give-up'; problem: string };

/** A non-success answer: 403 (an expired URL) wants a fresh URL, 5xx/429 another try, the rest is final. */
function unsuccessful(status: number, body: string): Attempt<never> {
  const problem = `the storage answered ${status}${s3Code(body)}`;
  if (status === 403) return { kind: 'refresh', problem };
  return { kind: isRetryableStatus(status) ? 'retry' : 'give-up', problem };
}

/** S3 error code from an XML error body, e.g. " (SlowDown)". */
function s3Code(body: string): string {
  const code = /<Code>([^<]{1,64})<\/Code>/.exec(body)?.[1] ?? (/"code":"([A-Z_]{1,64})"/.exec(body)?.[1] ?? '');
  return code ? ` (${code})` : '';
}
