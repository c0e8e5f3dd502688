/**
 * The floor: the same bytes as an S3 multipart upload straight to MinIO with
 * the AWS SDK, the same part size and as many parts in flight as the driver.
 * Payloads go unsigned (as presigned part URLs do), so the floor carries no
 * hashing that a registry's PUT would not.
 */
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { request } from 'undici';
import type { RunningMinio } from '../../test/support/minio.ts';
import type { BlobSource } from '../blob-source.ts';
import { benchAgent, type PushTiming } from '../oci-push.ts';

export class DirectS3 {
  readonly #minio: RunningMinio;
  readonly #client: S3Client;
  readonly #prefix: string;
  readonly partSize: number;
  readonly partsInFlight: number;

  constructor(minio: RunningMinio, options: { prefix: string; partSize: number; partsInFlight: number }) {
    this.#minio = minio;
    this.#prefix = options.prefix;
    this.partSize = options.partSize;
    this.partsInFlight = options.partsInFlight;
    this.#client = new S3Client({
      endpoint: minio.endpoint,
      region: minio.region,
      forcePathStyle: true,
      credentials: { accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    this.#client.middlewareStack.add(
      (next) => async (args) => {
        const headers = (args.request as { headers?: Record<string, string> }).headers;
        if (headers) headers['x-amz-content-sha256'] = 'UNSIGNED-PAYLOAD';
        return next(args);
      },
      { step: 'build', name: 'unsignedPayload' },
    );
  }

  /** Uploads `blob` in this target's parts, `partsInFlight` at once; `commitMs` is the CompleteMultipartUpload alone. */
  upload(blob: BlobSource): Promise<PushTiming> {
    return this.#multipart(blob, async (upload) => {
      const partCount = Math.max(1, Math.ceil(blob.size / this.partSize));
      const etags: string[] = [];
      let next = 0;
      const worker = async () => {
        while (next < partCount) {
          const index = next++;
          const start = index * this.partSize;
          const body = blob.bytes(start, Math.min(this.partSize, blob.size - start));
          const { ETag } = await this.#client.send(new UploadPartCommand({ ...upload, PartNumber: index + 1, Body: body, ContentLength: body.length }));
          etags[index] = ETag as string;
        }
      };
      await Promise.all(Array.from({ length: Math.min(this.partsInFlight, partCount) }, worker));
      return etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 }));
    });
  }

  /**
   * Uploads `blob` in parts of `partSize`, one at a time, each PUT to a
   * presigned URL with the HTTP client the driver uses (undici), as the
   * registry sends its parts; `onPart` gets each PUT's time, its URL signed
   * beforehand. What a chunked client's PATCHes could take with no registry
   * in the way.
   */
  uploadSequential(blob: BlobSource, partSize: number, onPart: (ms: number) => void): Promise<PushTiming> {
    return this.#multipart(blob, async (upload) => {
      const parts: { ETag: string; PartNumber: number }[] = [];
      const reused = Buffer.allocUnsafe(Math.min(partSize, blob.size));
      for (let start = 0, PartNumber = 1; start < blob.size || PartNumber === 1; start += partSize, PartNumber++) {
        const url = await getSignedUrl(this.#client, new UploadPartCommand({ ...upload, PartNumber }), { expiresIn: 600 });
        const body = blob.bytes(start, Math.min(partSize, blob.size - start), reused);
        const partStarted = performance.now();
        const response = await request(url, { method: 'PUT', body, headers: { 'content-length': String(body.length) }, dispatcher: benchAgent });
        await response.body.dump();
        onPart(performance.now() - partStarted);
        const etag = response.headers.etag;
        if (response.statusCode !== 200 || typeof etag !== 'string') throw new Error(`part ${PartNumber} answered ${response.statusCode}`);
        parts.push({ ETag: etag, PartNumber });
      }
      return parts;
    });
  }

  /**
   * One timed multipart upload of `blob`, its parts sent by `sendParts`; the
   * object is deleted once timed, since a full run pushes more than the disk
   * holds.
   */
  async #multipart(blob: BlobSource, sendParts: (upload: { Bucket: string; Key: string; UploadId: string }) => Promise<{ ETag: string; PartNumber: number }[]>): Promise<PushTiming> {
    const Bucket = this.#minio.bucket;
    const Key = `${this.#prefix}/${blob.digest().slice('sha256:'.length)}`;
    const started = performance.now();
    const { UploadId } = await this.#client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
    let parts: { ETag: string; PartNumber: number }[];
    try {
      parts = await sendParts({ Bucket, Key, UploadId: UploadId as string });
    } catch (err) {
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
      throw err;
    }
    const committing = performance.now();
    await this.#client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
    const finished = performance.now();
    await this.#client.send(new DeleteObjectCommand({ Bucket, Key }));
    return { totalMs: finished - started, commitMs: finished - committing };
  }

  close(): void {
    this.#client.destroy();
  }
}
