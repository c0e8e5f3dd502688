import { createCipheriv, createHash } from 'node:crypto';
import { Agent, request } from 'undici';

const MiB = 1024 * 1024;

/**
 * Deterministic blob bytes: an AES-128-CTR keystream keyed by `seed`, so any
 * range can be regenerated (to push it again or to check a ranged read)
 * without keeping gigabytes in memory.
 */
export class SyntheticBlob {
  readonly seed: string;
  readonly size: number;
  readonly digest: string;
  readonly #key: Buffer;

  private constructor(seed: string, size: number, digest: string, key: Buffer) {
    this.seed = seed;
    this.size = size;
    this.digest = digest;
    this.#key = key;
  }

  static create(seed: string, size: number): SyntheticBlob {
    const key = createHash('sha256').update(seed).digest().subarray(0, 16);
    const hash = createHash('sha256');
    const blob = new SyntheticBlob(seed, size, '', key);
    for (let offset = 0; offset < size; offset += 8 * MiB) hash.update(blob.read(offset, Math.min(8 * MiB, size - offset)));
    return new SyntheticBlob(seed, size, `sha256:${hash.digest('hex')}`, key);
  }

  static fromBytes(bytes: Buffer): { digest: string; size: number; read(offset: number, length: number): Buffer } {
    return { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, read: (offset, length) => bytes.subarray(offset, offset + length) };
  }

  read(offset: number, length: number): Buffer {
    const iv = Buffer.alloc(16);
    iv.writeBigUInt64BE(BigInt(Math.floor(offset / 16)), 8);
    const skip = offset % 16;
    const cipher = createCipheriv('aes-128-ctr', this.#key, iv);
    return cipher.update(Buffer.alloc(length + skip)).subarray(skip);
  }
}

export type BlobSource = Pick<SyntheticBlob, 'digest' | 'size' | 'read'>;

/** One client-visible failure, and when the client's retry of it next succeeded. */
export interface Failure {
  at: number;
  recoveredAt?: number;
  what: string;
  detail: string;
}

/** Every failure any client saw, for the per-kill recovery figures. */
export class FailureLog {
  readonly failures: Failure[] = [];

  record(what: string, detail: string): Failure {
    const failure: Failure = { at: Date.now(), what, detail: detail.slice(0, 200) };
    this.failures.push(failure);
    return failure;
  }
}

class RequestFailed extends Error {}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/**
 * A registry client that behaves like Docker: it logs in with the token flow
 * (again on a 401), pushes a blob as POST, fixed-size PATCHes and PUT, and
 * when a request fails asks `GET` on the upload where it stands and
 * continues from there (or starts the blob over when the upload is gone),
 * for up to 5 attempts per blob, manifest or pull.
 */
export class DockerLikeClient {
  static readonly ATTEMPTS = 5;
  readonly #base: string;
  readonly #user: { username: string; password: string };
  readonly #failures: FailureLog;
  readonly #tokens = new Map<string, string>();
  readonly #dispatcher = new Agent({ connections: 512, keepAliveTimeout: 4_000, headersTimeout: 60_000, bodyTimeout: 60_000 });

  constructor(base: string, user: { username: string; password: string }, failures: FailureLog) {
    this.#base = base;
    this.#user = user;
    this.#failures = failures;
  }

  async call(repo: string, method: string, path: string, options: { body?: Buffer; headers?: Record<string, string> } = {}): Promise<Response> {
    for (let login = 0; ; login++) {
      const token = await this.#token(repo, login > 0);
      const response = await request(`${this.#base}${path}`, {
        method: method as 'GET',
        body: options.body,
        headers: { authorization: `Bearer ${token}`, ...options.headers },
        dispatcher: this.#dispatcher,
      });
      const body = Buffer.from(await response.body.arrayBuffer());
      if (response.statusCode === 401 && login === 0) continue;
      return { status: response.statusCode, headers: response.headers, body };
    }
  }

  /**
   * Runs `step` up to 5 times. Each failure is logged; `recover` runs before
   * the next attempt. Whichever request next succeeds (`step` and `recover`
   * report it through `answered`) marks the open failures recovered.
   */
  async withRetries<T>(
    what: string,
    step: (answered: () => void) => Promise<T>,
    recover: (answered: () => void) => Promise<void> = async () => {},
  ): Promise<{ value: T; retries: number }> {
    const open: Failure[] = [];
    const answered = () => {
      for (const failure of open.splice(0)) failure.recoveredAt = Date.now();
    };
    for (let attempt = 1; ; attempt++) {
      try {
        const value = await step(answered);
        answered();
        return { value, retries: attempt - 1 };
      } catch (err) {
        open.push(this.#failures.record(what, err instanceof Error ? err.message : String(err)));
        if (attempt >= DockerLikeClient.ATTEMPTS) throw new Error(`${what}: failed ${attempt} times, last: ${(err as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
        await recover(answered).catch(() => {});
      }
    }
  }

  /**
   * Pushes an image the way `docker push` does: each blob unless the
   * repository has it (HEAD), then the manifest. A manifest refused for a
   * missing blob (collected meanwhile) pushes the image again: up to 5
   * attempts. Resolves to the retries it needed, blobs' included.
   */
  async pushImage(repo: string, tag: string, blobs: readonly BlobSource[], manifest: Buffer, chunkSize: number): Promise<number> {
    let blobRetries = 0;
    const { retries } = await this.withRetries(`manifest ${repo}:${tag}`, async (answered) => {
      for (const blob of blobs) blobRetries += await this.pushBlob(repo, blob, chunkSize);
      answered();
      expect(await this.call(repo, 'PUT', `/v2/${repo}/manifests/${tag}`, { body: manifest, headers: { 'content-type': OCI_MANIFEST } }), 201, 'PUT manifest');
    });
    return retries + blobRetries;
  }

  /** Pushes a blob unless the repository has it; resolves to the retries it needed. */
  async pushBlob(repo: string, blob: BlobSource, chunkSize: number): Promise<number> {
    let location: string | undefined;
    let offset = 0;
    const { retries } = await this.withRetries(
      `push ${blob.digest.slice(7, 19)}`,
      async (answered) => {
        if (!location) {
          const head = await this.call(repo, 'HEAD', `/v2/${repo}/blobs/${blob.digest}`);
          if (head.status === 200) return;
          answered();
          const started = expect(await this.call(repo, 'POST', `/v2/${repo}/blobs/uploads/`), 202, 'POST');
          answered();
          location = String(started.headers.location);
          offset = 0;
        }
        while (offset < blob.size) {
          const chunk = blob.read(offset, Math.min(chunkSize, blob.size - offset));
          const patched = await this.call(repo, 'PATCH', location, {
            body: chunk,
            headers: { 'content-type': 'application/octet-stream', 'content-range': `${offset}-${offset + chunk.length - 1}`, 'content-length': String(chunk.length) },
          });
          expect(patched, 202, `PATCH ${offset}`);
          answered();
          offset = rangeEnd(patched.headers.range);
        }
        expect(await this.call(repo, 'PUT', `${location}?digest=${blob.digest}`, { headers: { 'content-length': '0' } }), 201, 'PUT');
      },
      async (answered) => {
        // Where does the upload stand? Continue from there, or start the blob over.
        if (!location) return;
        const status = await this.call(repo, 'GET', location);
        if (status.status === 204) offset = rangeEnd(status.headers.range);
        else if (status.status === 404) location = undefined;
        else throw new RequestFailed(`GET upload status: ${status.status}`);
        answered();
      },
    );
    return retries;
  }

  /** GET a blob through the registry's redirect, optionally one byte range of it. */
  async getBlob(repo: string, digest: string, range?: { start: number; end: number }): Promise<Buffer> {
    const redirect = await this.call(repo, 'GET', `/v2/${repo}/blobs/${digest}`);
    expect(redirect, 307, 'GET blob');
    const response = await request(String(redirect.headers.location), {
      headers: range ? { range: `bytes=${range.start}-${range.end}` } : {},
      dispatcher: this.#dispatcher,
    });
    const body = Buffer.from(await response.body.arrayBuffer());
    if (response.statusCode !== (range ? 206 : 200)) throw new RequestFailed(`GET redirected blob: ${response.statusCode} ${body.toString().slice(0, 200)}`);
    return body;
  }

  async close(): Promise<void> {
    await this.#dispatcher.close();
  }

  async #token(repo: string, fresh: boolean): Promise<string> {
    const cached = this.#tokens.get(repo);
    if (cached && !fresh) return cached;
    const basic = Buffer.from(`${this.#user.username}:${this.#user.password}`).toString('base64');
    const response = await request(`${this.#base}/auth/token?service=holdfast-test&scope=repository:${repo}:pull,push`, {
      headers: { authorization: `Basic ${basic}` },
      dispatcher: this.#dispatcher,
    });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new RequestFailed(`token: ${response.statusCode} ${text.slice(0, 200)}`);
    const { token } = JSON.parse(text) as { token: string };
    this.#tokens.set(repo, token);
    return token;
  }
}

export const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** An OCI image manifest over a config and layers. */
export function imageManifest(config: Pick<BlobSource, 'digest' | 'size'>, layers: readonly Pick<BlobSource, 'digest' | 'size'>[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config.digest, size: config.size },
      layers: layers.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer.digest, size: layer.size })),
    }),
  );
}

function expect(response: Response, status: number, what: string): Response {
  if (response.status !== status) throw new RequestFailed(`${what}: ${response.status} ${response.body.toString().slice(0, 200)}`);
  return response;
}

/** The next offset after an upload's `Range: 0-<last>` ("0-0" counts as empty: no test leaves one byte). */
function rangeEnd(range: string | string[] | undefined): number {
  const text = String(range ?? '');
  if (text === '0-0') return 0;
  const match = /^0-(\d+)$/.exec(text);
  if (!match) throw new RequestFailed(`bad Range header ${text}`);
  return Number(match[1]) + 1;
}
