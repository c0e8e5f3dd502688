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

/**
 * A published MD5 collision (Wang et al., 2004): two 128-byte blocks, six
 * bytes apart, with one MD5 from MD5's initial state, so each followed by the
 * same suffix still has one MD5. What an S3 part ETag cannot tell apart.
 */
export function md5Twins(suffix: Buffer): [Buffer, Buffer] {
  const a = Buffer.from(
    'd131dd02c5e6eec4693d9a0698aff95c2fcab58712467eab4004583eb8fb7f8955ad340609f4b30283e488832571415a085125e8f7cdc99fd91dbdf280373c5b' +
      'd8823e3156348f5bae6dacd436c919c6dd53e2b487da03fd02396306d248cda0e99f33420f577ee8ce54b67080a80d1ec69821bcb6a8839396f9652b6ff72a70',
    'hex',
  );
  const b = Buffer.from(a.map((byte, index) => ([19, 45, 59, 83, 109, 123].includes(index) ? byte ^ 0x80 : byte)));
  return [Buffer.concat([a, suffix]), Buffer.concat([b, suffix])];
}

export const MD5_TWIN_BLOCK = 128;

export function md5(bytes: Uint8Array): string {
  return createHash('md5').update(bytes).digest('hex');
}
