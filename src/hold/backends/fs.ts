import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { copyFile, mkdir, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import { KeyedMutex } from '../../core/keyed-mutex.ts';
import { FsUrlSigner } from './fs-signer.ts';
import { multipartEtag } from './multipart-etag.ts';
import { StorageError, type CompletedPartInput, type ListOptions, type ObjectInfo, type PresignedRequest, type SmallWriteCondition, type StorageBackend, type UploadedPart } from './types.ts';
import { MIN_PART_SIZE } from '../../protocol/limits.ts';

export interface FsBackendOptions {
  root: string;
  /** Base URL at which the hold serves the signed `/_fs` routes. */
  publicUrl: string;
  /** HMAC secret for signed URLs; random per process when unset. */
  signingSecret?: string;
}

interface PartRecord {
  size: number;
  etag: string;
}

/**
 * The embedded backend: objects are files under `root/objects`, multipart
 * uploads are directories under `root/multipart`. Every file appears by
 * rename, so a reader never sees a half-written object. An object a
 * multipart upload assembled has its multipart ETag beside it under
 * `root/etags`, so a completion repeated after one that succeeded is
 * recognised, as S3 recognises it.
 */
export class FsBackend implements StorageBackend {
  readonly kind = 'fs' as const;
  readonly capabilities = Object.freeze({ uploadPartCopy: true, conditionalWrites: true, references: false, maxSingleCopyBytes: Number.MAX_SAFE_INTEGER });
  readonly #smallLocks = new KeyedMutex();
  readonly signer: FsUrlSigner;
  readonly #objects: string;
  readonly #multipart: string;
  readonly #tmp: string;
  readonly #etags: string;
  readonly #ready: Promise<void>;

  constructor(options: FsBackendOptions) {
    const root = path.resolve(options.root);
    this.#objects = path.join(root, 'objects');
    this.#multipart = path.join(root, 'multipart');
    this.#tmp = path.join(root, 'tmp');
    this.#etags = path.join(root, 'etags');
    this.signer = new FsUrlSigner(options.publicUrl, options.signingSecret);
    this.#ready = Promise.all([this.#objects, this.#multipart, this.#tmp, this.#etags].map((dir) => mkdir(dir, { recursive: true }))).then(
      () => undefined,
    );
  }

  async createMultipartUpload(key: string): Promise<string> {
    await this.#ready;
    const uploadId = randomUUID();
    const dir = this.#uploadDir(uploadId);
    await mkdir(dir);
    await writeFile(path.join(dir, 'meta.json'), JSON.stringify({ key }));
    return uploadId;
  }

  async presignUploadPart(key: string, uploadId: string, partNumber: number, ttlSeconds: number): Promise<PresignedRequest> {
    await this.#assertUpload(key, uploadId);
    const expiresAt = expiry(ttlSeconds);
    return { method: 'PUT', url: this.signer.sign({ op: 'put-part', uploadId, partNumber }, expiresAt), expiresAt };
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: readonly CompletedPartInput[]): Promise<void> {
    try {
      await this.#assertUpload(key, uploadId);
    } catch (err) {
      // A completion repeated after one that succeeded: the object is these very parts if its ETag is theirs.
      if (err instanceof StorageError && err.code === 'UPLOAD_UNKNOWN' && (await this.#assembledFrom(key, parts))) return;
      throw err;
    }
    const dir = this.#uploadDir(uploadId);
    const records: PartRecord[] = [];
    for (const part of parts) {
      const record = await readPartRecord(dir, part.partNumber);
      if (!record || record.etag !== part.etag) {
        throw new StorageError('INVALID_PART', `part ${part.partNumber} was not uploaded or its ETag does not match`);
      }
      records.push(record);
    }
    records.slice(0, -1).forEach((record, index) => {
      if (record.size < MIN_PART_SIZE) {
        const partNumber = parts[index]?.partNumber;
        throw new StorageError('PART_TOO_SMALL', `part ${partNumber} is ${record.size} bytes; every part but the last must be at least ${MIN_PART_SIZE}`);
      }
    });
    const temp = this.#tempPath();
    async function* concatenated() {
      for (const part of parts) yield* createReadStream(partPath(dir, part.partNumber));
    }
    try {
      await pipeline(concatenated, createWriteStream(temp));
      await this.#publish(temp, key);
    } catch (err) {
      await rm(temp, { force: true });
      throw err;
    }
    const etag = multipartEtag(parts);
    if (etag) await writeFile(this.#etagPath(key), etag);
    await rm(dir, { recursive: true, force: true });
  }

  async #assembledFrom(key: string, parts: readonly CompletedPartInput[]): Promise<boolean> {
    const expected = multipartEtag(parts);
    if (!expected || !(await this.stat(key))) return false;
    return (await readFile(this.#etagPath(key), 'utf8').catch(() => undefined)) === expected;
  }

  #etagPath(key: string): string {
    return path.join(this.#etags, createHash('sha256').update(key).digest('hex'));
  }

  async abortMultipartUpload(_key: string, uploadId: string): Promise<void> {
    if (!isUuid(uploadId)) return;
    await rm(this.#uploadDir(uploadId), { recursive: true, force: true });
  }

  async multipartUploadsAt(key: string): Promise<string[]> {
    const ids: string[] = [];
    for (const uploadId of await this.pendingMultipartUploads()) {
      if (await this.#uploadKey(uploadId) === key) ids.push(uploadId);
    }
    return ids;
  }

  async uploadedPart(key: string, uploadId: string, partNumber: number): Promise<UploadedPart | undefined> {
    await this.#assertUpload(key, uploadId);
    return readPartRecord(this.#uploadDir(uploadId), partNumber);
  }

  async uploadedPartsFrom(key: string, uploadId: string, first: number, max: number): Promise<(UploadedPart & { partNumber: number })[]> {
    await this.#assertUpload(key, uploadId);
    const parts: (UploadedPart & { partNumber: number })[] = [];
    for (let partNumber = first; parts.length < max; partNumber++) {
      const record = await readPartRecord(this.#uploadDir(uploadId), partNumber);
      if (!record) break;
      parts.push({ partNumber, etag: record.etag, size: record.size });
    }
    return parts;
  }

  async presignPut(key: string, ttlSeconds: number): Promise<PresignedRequest> {
    const expiresAt = expiry(ttlSeconds);
    return { method: 'PUT', url: this.signer.sign({ op: 'put-object', key }, expiresAt), expiresAt };
  }

  async presignGet(key: string, ttlSeconds: number, method: 'GET' | 'HEAD'): Promise<PresignedRequest> {
    const expiresAt = expiry(ttlSeconds);
    const op = method === 'GET' ? 'get-object' : 'head-object';
    return { method, url: this.signer.sign({ op, key }, expiresAt), expiresAt };
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const info = await stat(this.#objectPath(key));
      return info.isFile() ? { key, size: info.size, lastModified: info.mtime } : undefined;
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /** Conditional writes are checked under a per-key lock: one hold process owns an fs root. */
  async putSmall(key: string, body: Uint8Array, condition: SmallWriteCondition = {}): Promise<string> {
    await this.#ready;
    return this.#smallLocks.run(key, async () => {
      if (condition.ifMatch !== undefined) {
        const current = await this.getSmall(key);
        if (!current || current.etag !== condition.ifMatch) throw new StorageError('PRECONDITION_FAILED', 'the object changed since it was read');
      }
      if (condition.ifNoneMatch === '*' && (await this.stat(key))) throw new StorageError('PRECONDITION_FAILED', 'the object exists');
      const temp = this.#tempPath();
      await writeFile(temp, body);
      await this.#publish(temp, key);
      return smallEtag(body);
    });
  }

  async getSmall(key: string): Promise<{ body: Uint8Array; etag: string } | undefined> {
    try {
      const body = await readFile(this.#objectPath(key));
      return { body, etag: smallEtag(body) };
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    await Promise.all(keys.map(async (key) => {
      await rm(this.#objectPath(key), { force: true });
      await rm(this.#etagPath(key), { force: true });
    }));
  }

  async putReference(): Promise<boolean> {
    throw new StorageError('UNSUPPORTED', 'the filesystem backend publishes by copying');
  }

  async copy(sourceKey: string, destinationKey: string): Promise<void> {
    await this.#ready;
    const temp = this.#tempPath();
    try {
      await copyFile(this.#objectPath(sourceKey), temp);
    } catch (err) {
      if (isNotFound(err)) throw new StorageError('NOT_FOUND', 'copy source does not exist', { cause: err });
      throw err;
    }
    await this.#publish(temp, destinationKey);
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    const base = this.#objects;
    const start = this.#objectPath(prefix.endsWith('/') ? prefix.slice(0, -1) : path.posix.dirname(prefix));
    const startKey = path.relative(base, start).split(path.sep).join('/');
    for await (const file of walk(start, startKey === '' ? '' : `${startKey}/`, options.startAfter)) {
      const key = path.relative(base, file).split(path.sep).join('/');
      if (!key.startsWith(prefix)) continue;
      const info = await stat(file).catch(() => undefined);
      if (info) yield { key, size: info.size, lastModified: info.mtime };
    }
  }

  async close(): Promise<void> {}

  // --- The data plane: called by the hold's signed `/_fs` routes. ---

  /** Stores a part; resolves to its quoted ETag (MD5, as S3 computes it). */
  async writePart(uploadId: string, partNumber: number, body: Readable): Promise<string> {
    if (!isUuid(uploadId)) throw new StorageError('UPLOAD_UNKNOWN', 'no such multipart upload');
    const dir = this.#uploadDir(uploadId);
    await stat(dir).catch((err: unknown) => {
      throw isNotFound(err) ? new StorageError('UPLOAD_UNKNOWN', 'no such multipart upload') : err;
    });
    const temp = this.#tempPath();
    const { md5, size } = await writeHashed(body, temp);
    const etag = `"${md5}"`;
    const recordTemp = this.#tempPath();
    await writeFile(recordTemp, JSON.stringify({ size, etag } satisfies PartRecord));
    await rename(temp, partPath(dir, partNumber));
    await rename(recordTemp, `${partPath(dir, partNumber)}.json`);
    return etag;
  }

  /** Stores a whole object; resolves to its quoted ETag. */
  async writeObject(key: string, body: Readable): Promise<string> {
    await this.#ready;
    const temp = this.#tempPath();
    const { md5 } = await writeHashed(body, temp);
    await this.#publish(temp, key);
    return `"${md5}"`;
  }

  readObject(key: string, range?: { start: number; end: number }): Readable {
    return createReadStream(this.#objectPath(key), range);
  }

  /** Pending multipart upload ids; for tests and diagnostics. */
  async pendingMultipartUploads(): Promise<string[]> {
    return (await readdir(this.#multipart).catch(() => [])).filter(isUuid);
  }

  async #assertUpload(key: string, uploadId: string): Promise<void> {
    if (!isUuid(uploadId) || (await this.#uploadKey(uploadId)) !== key) {
      throw new StorageError('UPLOAD_UNKNOWN', 'no such multipart upload');
    }
  }

  /** The key a multipart upload assembles into; undefined when there is no such upload. */
  async #uploadKey(uploadId: string): Promise<string | undefined> {
    const meta = await readFile(path.join(this.#uploadDir(uploadId), 'meta.json'), 'utf8').catch(() => undefined);
    return meta === undefined ? undefined : (JSON.parse(meta) as { key: string }).key;
  }

  async #publish(temp: string, key: string): Promise<void> {
    const target = this.#objectPath(key);
    await mkdir(path.dirname(target), { recursive: true });
    await rename(temp, target);
  }

  #objectPath(key: string): string {
    const resolved = path.resolve(this.#objects, key);
    if (resolved !== this.#objects && !resolved.startsWith(this.#objects + path.sep)) {
      throw new StorageError('INTERNAL', 'key escapes the storage root');
    }
    return resolved;
  }

  #uploadDir(uploadId: string): string {
    return path.join(this.#multipart, uploadId);
  }

  #tempPath(): string {
    return path.join(this.#tmp, randomBytes(12).toString('hex'));
  }
}

function partPath(dir: string, partNumber: number): string {
  return path.join(dir, `part-${String(partNumber).padStart(5, '0')}`);
}

async function readPartRecord(dir: string, partNumber: number): Promise<PartRecord | undefined> {
  const text = await readFile(`${partPath(dir, partNumber)}.json`, 'utf8').catch(() => undefined);
  return text ? (JSON.parse(text) as PartRecord) : undefined;
}

async function writeHashed(body: Readable, file: string): Promise<{ md5: string; size: number }> {
  const md5 = createHash('md5');
  let size = 0;
  body.on('data', (chunk: Buffer) => {
    md5.update(chunk);
    size += chunk.length;
  });
  try {
    await pipeline(body, createWriteStream(file));
  } catch (err) {
    await rm(file, { force: true });
    throw err;
  }
  return { md5: md5.digest('hex'), size };
}

/**
 * The files under `dir` (whose keys start with `keyPrefix`) in key order:
 * entries sorted by byte, and a directory named `a` walked as the keys
 * `a/...`, after `a-` and before `a0`. With `startAfter`, subtrees wholly at
 * or before it are not read.
 */
async function* walk(dir: string, keyPrefix: string, startAfter?: string): AsyncIterable<string> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
  const keyed = entries
    .filter((entry) => entry.isDirectory() || entry.isFile())
    .map((entry) => {
      const key = keyPrefix + entry.name + (entry.isDirectory() ? '/' : '');
      return { entry, key, bytes: Buffer.from(key) };
    })
    .sort((a, b) => Buffer.compare(a.bytes, b.bytes));
  for (const { entry, key } of keyed) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      // Every key in it starts with `key`: all are at or before `startAfter` when `key` sorts first and is not a prefix of it.
      if (startAfter !== undefined && !startAfter.startsWith(key) && compareKeys(key, startAfter) < 0) continue;
      yield* walk(full, key, startAfter);
    } else if (startAfter === undefined || compareKeys(key, startAfter) > 0) {
      yield full;
    }
  }
}

function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

function expiry(ttlSeconds: number): Date {
  return new Date(Date.now() + ttlSeconds * 1000);
}

function isUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value);
}

function isNotFound(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function smallEtag(body: Uint8Array): string {
  return `"${createHash('md5').update(body).digest('hex')}"`;
}
