/**
 * The client side of the push workloads, the same for every registry: plain
 * distribution-spec requests over undici, no auth (targets run without it).
 */
import { Readable } from 'node:stream';
import { Agent, request, type Dispatcher } from 'undici';
import type { BlobSource } from './blob-source.ts';

export const benchAgent: Dispatcher = new Agent({ connections: 256, headersTimeout: 600_000, bodyTimeout: 600_000 });

export interface PushTiming {
  /** POST to the 201 of the PUT. */
  totalMs: number;
  /** The final PUT ?digest= alone (an empty body). */
  commitMs: number;
}

export class PushError extends Error {}

async function call(url: string, options: Omit<Dispatcher.RequestOptions, 'path' | 'origin'>, expected: number): Promise<Dispatcher.ResponseData> {
  const response = await request(url, { dispatcher: benchAgent, ...options });
  if (response.statusCode !== expected) {
    const text = await response.body.text();
    throw new PushError(`${options.method} ${new URL(url).pathname}: expected ${expected}, got ${response.statusCode} ${text.slice(0, 300)}`);
  }
  return response;
}

async function startUpload(baseUrl: string, repo: string): Promise<string> {
  const response = await call(`${baseUrl}/v2/${repo}/blobs/uploads/`, { method: 'POST' }, 202);
  await response.body.dump();
  return new URL(String(response.headers.location), baseUrl).toString();
}

function nextLocation(response: Dispatcher.ResponseData, baseUrl: string, current: string): string {
  const location = response.headers.location;
  return location ? new URL(String(location), baseUrl).toString() : current;
}

async function commit(location: string, digest: string): Promise<number> {
  const url = new URL(location);
  url.searchParams.set('digest', digest);
  const started = performance.now();
  const response = await call(url.toString(), { method: 'PUT', headers: { 'content-length': '0' } }, 201);
  await response.body.dump();
  return performance.now() - started;
}

/** Docker's way: POST, one PATCH streaming the whole blob with no length, PUT ?digest=. */
export async function pushStreamed(baseUrl: string, repo: string, blob: BlobSource): Promise<PushTiming> {
  const digest = blob.digest();
  const started = performance.now();
  let location = await startUpload(baseUrl, repo);
  const patched = await call(location, { method: 'PATCH', body: Readable.from(blob.pieces(), { objectMode: false }), headers: { 'content-type': 'application/octet-stream' } }, 202);
  await patched.body.dump();
  location = nextLocation(patched, baseUrl, location);
  const commitMs = await commit(location, digest);
  return { totalMs: performance.now() - started, commitMs };
}

/** The OCI chunked way: PATCHes of `chunkSize` with Content-Range, then PUT ?digest=. */
export async function pushChunked(
  baseUrl: string,
  repo: string,
  blob: BlobSource,
  chunkSize: number,
  options: { onPatch?: (ms: number) => void } = {},
): Promise<PushTiming> {
  const digest = blob.digest();
  const started = performance.now();
  let location = await startUpload(baseUrl, repo);
  // Each PATCH is answered before the next is read into the buffer.
  const reused = Buffer.allocUnsafe(Math.min(chunkSize, blob.size));
  for (let offset = 0; offset < blob.size; offset += chunkSize) {
    const chunk = blob.bytes(offset, Math.min(chunkSize, blob.size - offset), reused);
    const patchStarted = performance.now();
    const patched = await call(
      location,
      {
        method: 'PATCH',
        body: chunk,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(chunk.length), 'content-range': `${offset}-${offset + chunk.length - 1}` },
      },
      202,
    );
    await patched.body.dump();
    options.onPatch?.(performance.now() - patchStarted);
    location = nextLocation(patched, baseUrl, location);
  }
  const commitMs = await commit(location, digest);
  return { totalMs: performance.now() - started, commitMs };
}

/** A small blob in two requests (POST, then PUT ?digest= with the body): every registry supports it. */
export async function pushSmallBlob(baseUrl: string, repo: string, bytes: Buffer, digest: string): Promise<void> {
  const url = new URL(await startUpload(baseUrl, repo));
  url.searchParams.set('digest', digest);
  const response = await call(url.toString(), { method: 'PUT', body: bytes, headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length) } }, 201);
  await response.body.dump();
}
