import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CopyObjectCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
  UploadPartCopyCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { PROVIDER_PROFILES, type ProviderName } from '../../protocol/providers.ts';
import { mapS3Error } from './s3-errors.ts';
import { multipartEtag } from './multipart-etag.ts';
import { StorageError, type BackendCapabilities, type CompletedPartInput, type ListOptions, type ObjectInfo, type PresignedRequest, type SmallWriteCondition, type StorageBackend, type UploadedPart } from './types.ts';
import { MAX_SINGLE_COPY_BYTES } from '../../protocol/limits.ts';

export interface S3BackendOptions {
  provider: ProviderName;
  bucket: string;
  region: string;
  /** Where the hold itself reaches S3. Unset means the provider's default. */
  endpoint?: string;
  /** Where clients reach S3, for presigned URLs; defaults to `endpoint`. */
  publicEndpoint?: string;
  forcePathStyle?: boolean;
  accessKeyId?: string;
  secretAccessKey?: string;
  sessionToken?: string;
  /** Objects above this are moved with UploadPartCopy; capped at 5 GiB. */
  copyPartThreshold: number;
  copyPartSize: number;
  copyConcurrency: number;
  publish: 'reference' | 'copy';
  requestTimeoutMs: number;
  /** For CopyObject, UploadPartCopy and CompleteMultipartUpload, which take minutes on big objects. */
  longRequestTimeoutMs: number;
  observe?: (operation: string, seconds: number, outcome: 'ok' | 'error') => void;
}

/** User metadata (x-amz-meta-*) of a reference object; the SDK hands keys back lower-cased. */
const REFERENCE_TARGET = 'holdfast-target';
const REFERENCE_SIZE = 'holdfast-size';

export class S3Backend implements StorageBackend {
  readonly kind = 's3' as const;
  readonly capabilities: BackendCapabilities;
  readonly #client: S3Client;
  readonly #presigner: S3Client;
  readonly #options: S3BackendOptions;

  constructor(options: S3BackendOptions) {
    this.#options = options;
    const profile = PROVIDER_PROFILES[options.provider];
    this.capabilities = Object.freeze({
      uploadPartCopy: profile.uploadPartCopy,
      conditionalWrites: profile.conditionalWrites,
      references: profile.conditionalWrites && options.publish === 'reference',
      maxSingleCopyBytes: Math.min(options.copyPartThreshold, MAX_SINGLE_COPY_BYTES),
    });
    const credentials =
      options.accessKeyId && options.secretAccessKey
        ? { accessKeyId: options.accessKeyId, secretAccessKey: options.secretAccessKey, sessionToken: options.sessionToken }
        : undefined;
    const base = {
      region: options.region,
      forcePathStyle: options.forcePathStyle ?? profile.forcePathStyle,
      credentials,
      // The SDK's default CRC32 checksums and aws-chunked bodies are refused by
      // R2, B2 and others; only send a checksum when an operation requires one.
      requestChecksumCalculation: 'WHEN_REQUIRED' as const,
      responseChecksumValidation: 'WHEN_REQUIRED' as const,
      maxAttempts: 3,
    };
    this.#client = new S3Client({ ...base, endpoint: options.endpoint });
    this.#presigner = new S3Client({ ...base, endpoint: options.publicEndpoint ?? options.endpoint });
  }

  async createMultipartUpload(key: string): Promise<string> {
    const result = await this.#send('CreateMultipartUpload', (options) => this.#client.send(new CreateMultipartUploadCommand({ Bucket: this.#bucket, Key: key }), options));
    if (!result.UploadId) throw new StorageError('INTERNAL', 'CreateMultipartUpload returned no UploadId');
    return result.UploadId;
  }

  async presignUploadPart(key: string, uploadId: string, partNumber: number, ttlSeconds: number): Promise<PresignedRequest> {
    const command = new UploadPartCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId, PartNumber: partNumber });
    return this.#presign('PUT', ttlSeconds, (client, options) => getSignedUrl(client, command, options));
  }

  async completeMultipartUpload(key: string, uploadId: string, parts: readonly CompletedPartInput[]): Promise<void> {
    const command = new CompleteMultipartUploadCommand({
      Bucket: this.#bucket,
      Key: key,
      UploadId: uploadId,
      MultipartUpload: { Parts: parts.map((part) => ({ PartNumber: part.partNumber, ETag: part.etag })) },
    });
    try {
      await this.#send('CompleteMultipartUpload', (options) => this.#client.send(command, options), this.#options.longRequestTimeoutMs);
    } catch (err) {
      // A completion repeated after one that succeeded (its hold process died
      // before recording it, or its answer was lost) finds no upload. The
      // object is then these very parts if its ETag is theirs.
      if (err instanceof StorageError && err.code === 'UPLOAD_UNKNOWN' && (await this.#assembledFrom(key, parts))) return;
      throw err;
    }
  }

  /** True when the object at `key` has the multipart ETag of exactly `parts`. */
  async #assembledFrom(key: string, parts: readonly CompletedPartInput[]): Promise<boolean> {
    const expected = multipartEtag(parts);
    if (!expected) return false;
    try {
      const head = await this.#send('HeadObject', (options) => this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }), options));
      return head.ETag?.replace(/"/g, '') === expected;
    } catch (err) {
      if (err instanceof StorageError && err.code === 'NOT_FOUND') return false;
      throw err;
    }
  }

  async abortMultipartUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.#send('AbortMultipartUpload', (options) => this.#client.send(new AbortMultipartUploadCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId }), options));
    } catch (err) {
      if (err instanceof StorageError && err.code === 'UPLOAD_UNKNOWN') return;
      throw err;
    }
  }

  async multipartUploadsAt(key: string): Promise<string[]> {
    // MinIO lists uploads for an exact key only; Storj wants a prefix ending in "/".
    const prefix = PROVIDER_PROFILES[this.#options.provider].listsUploadsByDirectory ? key.slice(0, key.lastIndexOf('/') + 1) : key;
    const ids: string[] = [];
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const command = new ListMultipartUploadsCommand({ Bucket: this.#bucket, Prefix: prefix, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker });
      const page = await this.#send('ListMultipartUploads', (options) => this.#client.send(command, options));
      ids.push(...(page.Uploads ?? []).filter((upload) => upload.Key === key && upload.UploadId).map((upload) => upload.UploadId as string));
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (keyMarker);
    return ids;
  }

  async uploadedPart(key: string, uploadId: string, partNumber: number): Promise<UploadedPart | undefined> {
    const command = new ListPartsCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId, PartNumberMarker: String(partNumber - 1), MaxParts: 1 });
    const result = await this.#send('ListParts', (options) => this.#client.send(command, options));
    const part = result.Parts?.find((candidate) => candidate.PartNumber === partNumber);
    return part?.ETag ? { etag: part.ETag, size: part.Size ?? 0 } : undefined;
  }

  async uploadedPartsFrom(key: string, uploadId: string, first: number, max: number): Promise<(UploadedPart & { partNumber: number })[]> {
    const parts: (UploadedPart & { partNumber: number })[] = [];
    let marker = first - 1;
    while (parts.length < max) {
      const command = new ListPartsCommand({ Bucket: this.#bucket, Key: key, UploadId: uploadId, PartNumberMarker: String(marker), MaxParts: Math.min(max - parts.length, 1000) });
      const result = await this.#send('ListParts', (options) => this.#client.send(command, options));
      for (const part of result.Parts ?? []) {
        if (part.PartNumber !== first + parts.length || !part.ETag) return parts;
        parts.push({ partNumber: part.PartNumber, etag: part.ETag, size: part.Size ?? 0 });
      }
      if (!result.IsTruncated || !result.Parts?.length) return parts;
      marker = first + parts.length - 1;
    }
    return parts;
  }

  async presignPut(key: string, ttlSeconds: number): Promise<PresignedRequest> {
    const command = new PutObjectCommand({ Bucket: this.#bucket, Key: key });
    return this.#presign('PUT', ttlSeconds, (client, options) => getSignedUrl(client, command, options));
  }

  async presignGet(key: string, ttlSeconds: number, method: 'GET' | 'HEAD'): Promise<PresignedRequest> {
    const input = { Bucket: this.#bucket, Key: key };
    return this.#presign(method, ttlSeconds, (client, options) =>
      method === 'GET' ? getSignedUrl(client, new GetObjectCommand(input), options) : getSignedUrl(client, new HeadObjectCommand(input), options),
    );
  }

  async stat(key: string): Promise<ObjectInfo | undefined> {
    try {
      const head = await this.#send('HeadObject', (options) => this.#client.send(new HeadObjectCommand({ Bucket: this.#bucket, Key: key }), options));
      const target = head.Metadata?.[REFERENCE_TARGET];
      const referencedSize = Number(head.Metadata?.[REFERENCE_SIZE]);
      if (target && Number.isSafeInteger(referencedSize)) return { key, size: referencedSize, lastModified: head.LastModified, target };
      return { key, size: head.ContentLength ?? 0, lastModified: head.LastModified };
    } catch (err) {
      if (err instanceof StorageError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    }
  }

  async putSmall(key: string, body: Uint8Array, condition: SmallWriteCondition = {}): Promise<string | undefined> {
    const { ifMatch, ifNoneMatch } = this.capabilities.conditionalWrites ? condition : {};
    const command = new PutObjectCommand({
      Bucket: this.#bucket,
      Key: key,
      Body: body,
      ContentType: 'application/json',
      ...(ifMatch ? { IfMatch: ifMatch } : {}),
      ...(ifNoneMatch ? { IfNoneMatch: ifNoneMatch } : {}),
    });
    return (await this.#send('PutObject', (options) => this.#client.send(command, options))).ETag;
  }

  async putReference(key: string, targetKey: string, size: number): Promise<boolean> {
    if (!this.capabilities.references) throw new StorageError('UNSUPPORTED', 'references are off for this backend');
    const command = new PutObjectCommand({
      Bucket: this.#bucket,
      Key: key,
      Body: new Uint8Array(0),
      IfNoneMatch: '*',
      Metadata: { [REFERENCE_TARGET]: targetKey, [REFERENCE_SIZE]: String(size) },
    });
    try {
      await this.#send('PutObject', (options) => this.#client.send(command, options));
      return true;
    } catch (err) {
      if (err instanceof StorageError && err.code === 'PRECONDITION_FAILED') return false;
      throw err;
    }
  }

  async getSmall(key: string): Promise<{ body: Uint8Array; etag: string } | undefined> {
    try {
      const result = await this.#send('GetObject', (options) => this.#client.send(new GetObjectCommand({ Bucket: this.#bucket, Key: key }), options));
      return { body: result.Body ? await result.Body.transformToByteArray() : new Uint8Array(), etag: result.ETag ?? '' };
    } catch (err) {
      if (err instanceof StorageError && err.code === 'NOT_FOUND') return undefined;
      throw err;
    }
  }

  async delete(keys: readonly string[]): Promise<void> {
    // One DeleteObject per key: DeleteObjects requires a checksum header that
    // several providers reject, and the hold only ever deletes a few keys.
    await forEachLimited(keys, 8, (key) => this.#send('DeleteObject', (options) => this.#client.send(new DeleteObjectCommand({ Bucket: this.#bucket, Key: key }), options)));
  }

  async copy(sourceKey: string, destinationKey: string, size: number): Promise<void> {
    const copySource = `${this.#bucket}/${sourceKey}`;
    if (size <= this.capabilities.maxSingleCopyBytes) {
      const command = new CopyObjectCommand({ Bucket: this.#bucket, Key: destinationKey, CopySource: copySource });
      await this.#send('CopyObject', (options) => this.#client.send(command, options), this.#options.longRequestTimeoutMs);
      return;
    }
    if (!this.capabilities.uploadPartCopy) {
      throw new StorageError(
        'UNSUPPORTED',
        `provider ${this.#options.provider} has no UploadPartCopy, so objects over ${this.capabilities.maxSingleCopyBytes} bytes cannot be moved server-side`,
      );
    }
    await this.#copyInParts(copySource, destinationKey, size);
  }

  async *list(prefix: string, options: ListOptions = {}): AsyncIterable<ObjectInfo> {
    let token: string | undefined;
    do {
      const command = new ListObjectsV2Command({ Bucket: this.#bucket, Prefix: prefix, ContinuationToken: token, ...(token === undefined && options.startAfter !== undefined ? { StartAfter: options.startAfter } : {}) });
      const page = await this.#send('ListObjectsV2', (options) => this.#client.send(command, options));
      for (const item of page.Contents ?? []) {
        if (item.Key) yield { key: item.Key, size: item.Size ?? 0, lastModified: item.LastModified };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  async close(): Promise<void> {
    this.#client.destroy();
    this.#presigner.destroy();
  }

  get #bucket(): string {
    return this.#options.bucket;
  }

  async #copyInParts(copySource: string, destinationKey: string, size: number): Promise<void> {
    const uploadId = await this.createMultipartUpload(destinationKey);
    const partSize = this.#options.copyPartSize;
    const ranges: { partNumber: number; start: number; end: number }[] = [];
    for (let start = 0, partNumber = 1; start < size; start += partSize, partNumber++) {
      ranges.push({ partNumber, start, end: Math.min(start + partSize, size) - 1 });
    }
    try {
      const parts: CompletedPartInput[] = new Array(ranges.length);
      await forEachLimited(ranges, this.#options.copyConcurrency, async (range) => {
        const command = new UploadPartCopyCommand({
          Bucket: this.#bucket,
          Key: destinationKey,
          UploadId: uploadId,
          PartNumber: range.partNumber,
          CopySource: copySource,
          CopySourceRange: `bytes=${range.start}-${range.end}`,
        });
        const result = await this.#send('UploadPartCopy', (options) => this.#client.send(command, options), this.#options.longRequestTimeoutMs);
        const etag = result.CopyPartResult?.ETag;
        if (!etag) throw new StorageError('INTERNAL', `UploadPartCopy returned no ETag for part ${range.partNumber}`);
        parts[range.partNumber - 1] = { partNumber: range.partNumber, etag };
      });
      await this.completeMultipartUpload(destinationKey, uploadId, parts);
    } catch (err) {
      await this.abortMultipartUpload(destinationKey, uploadId).catch(() => {});
      throw err;
    }
  }

  async #presign(
    method: PresignedRequest['method'],
    ttlSeconds: number,
    sign: (client: S3Client, options: { expiresIn: number }) => Promise<string>,
  ): Promise<PresignedRequest> {
    const expiresAt = new Date(Date.now() + ttlSeconds * 1000);
    const url = await sign(this.#presigner, { expiresIn: ttlSeconds });
    return { method, url, expiresAt };
  }

  async #send<Output>(
    operation: string,
    call: (options: { abortSignal: AbortSignal }) => Promise<Output>,
    timeoutMs = this.#options.requestTimeoutMs,
  ): Promise<Output> {
    const started = process.hrtime.bigint();
    try {
      const result = await call({ abortSignal: AbortSignal.timeout(timeoutMs) });
      this.#options.observe?.(operation, seconds(started), 'ok');
      return result;
    } catch (err) {
      this.#options.observe?.(operation, seconds(started), 'error');
      throw mapS3Error(operation, err);
    }
  }
}

function seconds(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

export async function forEachLimited<T>(items: readonly T[], limit: number, task: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await task(item);
    }
  });
  await Promise.all(workers);
}
