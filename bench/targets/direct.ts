/**
 * The floor: the same bytes as an S3 multipart upload straight to MinIO with
 * the AWS SDK, the same part size and as many parts in flight as the driver.
 * Payloads go unsigned (as presigned part URLs do), so the floor carries no
 * hashing that a registry's PUT would not.
 */
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, S3Client, UploadPartCommand } from '@aws-sdk/client-s3';
import type { RunningMinio } from '../../test/support/minio.ts';
import type { BlobSource } from '../blob-source.ts';
import type { PushTiming } from '../oci-push.ts';

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

  /** Uploads `blob`; `commitMs` is the CompleteMultipartUpload alone. */
  async upload(blob: BlobSource): Promise<PushTiming> {
    const Bucket = this.#minio.bucket;
    const Key = `${this.#prefix}/${blob.digest().slice('sha256:'.length)}`;
    const started = performance.now();
    const { UploadId } = await this.#client.send(new CreateMultipartUploadCommand({ Bucket, Key }));
    const partCount = Math.max(1, Math.ceil(blob.size / this.partSize));
    const etags: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < partCount) {
        const index = next++;
        const start = index * this.partSize;
        const body = blob.bytes(start, Math.min(this.partSize, blob.size - start));
        const { ETag } = await this.#client.send(new UploadPartCommand({ Bucket, Key, UploadId, PartNumber: index + 1, Body: body, ContentLength: body.length }));
        etags[index] = ETag as string;
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.partsInFlight, partCount) }, worker));
    } catch (err) {
      await this.#client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
      throw err;
    }
    const committing = performance.now();
    await this.#client.send(
      new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: etags.map((ETag, index) => ({ ETag, PartNumber: index + 1 })) } }),
    );
    const finished = performance.now();
    return { totalMs: finished - started, commitMs: finished - committing };
  }

  close(): void {
    this.#client.destroy();
  }
}
