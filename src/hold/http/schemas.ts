import { z } from 'zod';

/**
 * Request bodies, one schema per endpoint, compiled once. Objects are strict:
 * an unknown field is a client mistake worth a clear 400. Digest-shaped
 * fields are plain strings here and parsed by the service, which answers
 * DIGEST_INVALID rather than a generic schema error.
 */
const did = z.string().min(1).max(512);
const name = z.string().min(1).max(256);
const uploadId = z.string().min(1).max(1024);
const partNumber = z.number();
const etag = z.string().max(256);
const size = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);

export const HOLD_SCHEMAS = {
  startMultipart: z.object({ did, digest: name.optional(), client_state: z.record(z.string(), z.unknown()).optional() }).strict(),
  partPresignedUrl: z.object({ did, digest: name, upload_id: uploadId, part_number: partNumber }).strict(),
  completeMultipart: z
    .object({
      did,
      digest: name,
      upload_id: uploadId,
      parts: z.array(z.object({ part_number: partNumber, etag, size: size.optional() }).strict()).max(10_000),
    })
    .strict(),
  abortMultipart: z.object({ did, digest: name, upload_id: uploadId }).strict(),
  putPresignedUrl: z.object({ did, digest: name, upload_id: uploadId.optional(), offset: size.optional() }).strict(),
  getPresignedUrl: z
    .object({ did, digest: name, method: z.enum(['GET', 'HEAD']).optional(), upload_id: uploadId.optional(), offset: size.optional() })
    .strict(),
  move: z.object({ did, from: name, to: name, size: size.optional() }).strict(),
  stat: z.object({ did, digest: name }).strict(),
  delete: z.object({ did, digest: name }).strict(),
  uploadStatus: z.object({ did, digest: name, upload_id: uploadId }).strict(),
  uploadProgress: z
    .object({
      did,
      digest: name,
      upload_id: uploadId,
      base_size: size,
      parts: z.array(z.object({ part_number: partNumber, etag, size }).strict()).max(10_000).optional(),
      staged: z.array(z.object({ offset: size, size }).strict()).max(10_000).optional(),
      client_state: z.record(z.string(), z.unknown()).optional(),
    })
    .strict(),
} as const;

export type HoldSchemas = typeof HOLD_SCHEMAS;
export type HoldRequest<K extends keyof HoldSchemas> = z.output<HoldSchemas[K]>;
