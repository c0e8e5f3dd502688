import { createHash, randomBytes } from 'node:crypto';
import { request } from 'undici';

export const MiB = 1024 * 1024;

export function randomBlob(size: number): Buffer {
  return randomBytes(size);
}

export function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** PUTs bytes to a presigned URL; resolves to the status and ETag. */
export async function putToUrl(url: string, body: Uint8Array): Promise<{ status: number; etag: string | undefined; text: string }> {
  const response = await request(url, { method: 'PUT', body, headers: { 'content-length': String(body.length) } });
  const text = await response.body.text();
  const etag = response.headers.etag;
  return { status: response.statusCode, etag: typeof etag === 'string' ? etag : undefined, text };
}

export async function getFromUrl(url: string, headers: Record<string, string> = {}): Promise<{ status: number; body: Buffer; headers: Record<string, unknown> }> {
  const response = await request(url, { method: 'GET', headers });
  return { status: response.statusCode, body: Buffer.from(await response.body.arrayBuffer()), headers: response.headers };
}
