import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { request } from 'undici';

/**
 * A minimal OCI push client for system tests: token auth, POST, chunked
 * PATCHes with Content-Range, GET status, PUT. `base` may change between
 * calls (several registry instances behind no proxy at all).
 */
export class OciTestClient {
  readonly #user: { username: string; password: string };
  readonly #tokens = new Map<string, string>();

  constructor(user: { username: string; password: string }) {
    this.#user = user;
  }

  async token(base: string, repo: string): Promise<string> {
    const key = `${base} ${repo}`;
    const cached = this.#tokens.get(key);
    if (cached) return cached;
    const basic = Buffer.from(`${this.#user.username}:${this.#user.password}`).toString('base64');
    const response = await request(`${base}/auth/token?service=holdfast-test&scope=repository:${repo}:pull,push`, { headers: { authorization: `Basic ${basic}` } });
    const { token } = (await response.body.json()) as { token: string };
    this.#tokens.set(key, token);
    return token;
  }

  async call(base: string, repo: string, method: string, path: string, options: { body?: Uint8Array | Readable; headers?: Record<string, string> } = {}) {
    const token = await this.token(base, repo);
    const response = await request(`${base}${path}`, {
      method: method as 'GET',
      body: options.body,
      headers: { authorization: `Bearer ${token}`, ...options.headers },
    });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, text };
  }

  async start(base: string, repo: string): Promise<string> {
    const response = await this.call(base, repo, 'POST', `/v2/${repo}/blobs/uploads/`);
    if (response.status !== 202) throw new Error(`POST upload: ${response.status} ${response.text}`);
    return response.headers.location as string;
  }

  async patch(base: string, repo: string, location: string, chunk: Uint8Array, start: number) {
    return this.call(base, repo, 'PATCH', location, {
      body: chunk,
      headers: { 'content-range': `${start}-${start + chunk.length - 1}`, 'content-type': 'application/octet-stream', 'content-length': String(chunk.length) },
    });
  }

  /** Docker's way: bytes in a PATCH that says no length (chunked transfer encoding) and no Content-Range. */
  async patchStreamed(base: string, repo: string, location: string, bytes: Uint8Array) {
    return this.call(base, repo, 'PATCH', location, { body: Readable.from([Buffer.from(bytes)]), headers: { 'content-type': 'application/octet-stream' } });
  }

  /** The durable offset the registry reports for an upload. */
  async offset(base: string, repo: string, location: string): Promise<number> {
    const response = await this.call(base, repo, 'GET', location);
    if (response.status !== 204) throw new Error(`GET upload status: ${response.status} ${response.text}`);
    // "0-0" means an empty upload here (the tests never leave exactly one byte).
    const range = String(response.headers.range ?? '');
    return range === '0-0' ? 0 : Number(/^0-(\d+)$/.exec(range)?.[1] ?? -1) + 1;
  }

  /** A whole blob in one PUT after the POST; resolves its digest, or throws with the answer. */
  async pushBlob(base: string, repo: string, bytes: Buffer): Promise<string> {
    const location = await this.start(base, repo);
    const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
    const put = await this.call(base, repo, 'PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${digest}`, {
      body: bytes,
      headers: { 'content-type': 'application/octet-stream' },
    });
    if (put.status !== 201) throw new Error(`blob PUT: ${put.status} ${put.text}`);
    return digest;
  }

  async finish(base: string, repo: string, location: string, digest: string) {
    return this.call(base, repo, 'PUT', `${location}?digest=${digest}`);
  }

  async fetchBlob(base: string, repo: string, digest: string): Promise<Buffer> {
    const token = await this.token(base, repo);
    const response = await request(`${base}/v2/${repo}/blobs/${digest}`, { headers: { authorization: `Bearer ${token}` } });
    if (response.statusCode === 307) {
      await response.body.dump();
      const redirected = await request(response.headers.location as string);
      const body = Buffer.from(await redirected.body.arrayBuffer());
      if (redirected.statusCode !== 200) throw new Error(`GET redirected blob: ${redirected.statusCode} ${body.toString().slice(0, 300)}`);
      return body;
    }
    const body = Buffer.from(await response.body.arrayBuffer());
    if (response.statusCode !== 200) throw new Error(`GET blob: ${response.statusCode} ${body.toString().slice(0, 300)}`);
    return body;
  }
}

export { sha256 } from './bytes.ts';
