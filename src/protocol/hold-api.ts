import { z } from 'zod';
import { MAX_PART_NUMBER, MAX_PRESIGNED_PARTS } from './limits.ts';

/**
 * The hold's JSON API, once: each endpoint's path, request body and answer,
 * and every error code with its status. The hold's routes validate requests
 * with these schemas, the driver's client builds its calls and types from
 * them (and checks answers against them in tests), and a test holds
 * docs/PRESIGNED_URLS.md to the same table. Endpoint names and JSON field
 * names are the seed's.
 *
 * Requests are strict: an unknown field is a client mistake worth a clear
 * 400. Digest-shaped fields are plain strings here and parsed by the hold,
 * which answers DIGEST_INVALID rather than a generic schema error. Answers
 * are loose, so a newer hold may add fields.
 */
const did = z.string().min(1).max(512);
const name = z.string().min(1).max(256);
const uploadId = z.string().min(1).max(1024);
const partNumber = z.number();
const etag = z.string().max(256);
const size = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const clientState = z.record(z.string(), z.unknown());
/** How many part URLs to presign after the recorded parts, so the next request needs no `/part-presigned-url`. */
const presignParts = z.number().int().min(0).max(MAX_PRESIGNED_PARTS).optional();

/**
 * The registry's hold on an upload: it grows each time another request (on
 * any instance) takes the upload over. The hold refuses a write that names a
 * lower epoch than one it has seen, so a writer that lost its hold can never
 * record, complete or publish over the one that took it.
 */
const writerEpoch = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional();
/** The hold's name for one staged segment object: every staging URL writes a key of its own. */
const segmentId = z.string().regex(/^[0-9a-f]{32}$/, 'segment_id is 32 hex characters, as the hold issued it');

const part = z.object({ part_number: partNumber, etag, size }).strict();
const stagedSegment = z.object({ offset: size, size, segment_id: segmentId.optional() }).strict();
const digestRequest = z.object({ did, digest: name }).strict();
const getPresignedUrlRequest = z
  .object({ did, digest: name, method: z.enum(['GET', 'HEAD']).optional(), upload_id: uploadId.optional(), offset: size.optional() })
  .strict();

const presignedUrl = z.looseObject({
  url: z.string(),
  expires_at: z.string(),
  method: z.enum(['PUT', 'GET', 'HEAD']),
  upload_name: z.string().optional(),
  /** For a staged segment's PUT URL: the segment's name, to record with its offset and size. */
  segment_id: z.string().optional(),
});

const partUrl = z.looseObject({ part_number: z.number(), url: z.string(), expires_at: z.string() });

const uploadView = z.looseObject({
  upload_name: z.string(),
  upload_id: z.string(),
  state: z.enum(['open', 'completed']),
  created_at: z.string(),
  updated_at: z.string(),
  expires_at: z.string(),
  size,
  completed_size: size.optional(),
  parts: z.array(z.looseObject({ part_number: z.number(), etag: z.string(), size })),
  staged: z.array(z.looseObject({ offset: size, size, segment_id: z.string().optional() })),
  client_state: clientState.optional(),
  /** The highest writer epoch the hold has seen for this upload. */
  writer_epoch: size.optional(),
  /**
   * A writer took this upload over from one whose lease ran out: that one
   * may still PUT parts through URLs it holds, so no running hash is trusted
   * for this upload any more (its commit reads the object back).
   */
  taken_over: z.boolean().optional(),
  /** Present when asked for with `presign_parts`: PUT URLs for the parts after `parts`. */
  part_urls: z.array(partUrl).optional(),
});

const blobDescriptor = z.looseObject({ digest: z.string(), size });

export interface HoldEndpoint<Req extends z.ZodType, Res extends z.ZodType> {
  path: `/${string}`;
  request: Req;
  response: Res;
  /** Query parameters merged under the body (the seed's `/move?from=&to=`). */
  acceptsQuery?: boolean;
  /** Work that may take minutes (assembling parts, copying): clients wait longer. */
  long?: boolean;
}

function endpoint<Req extends z.ZodType, Res extends z.ZodType>(definition: HoldEndpoint<Req, Res>): HoldEndpoint<Req, Res> {
  return definition;
}

export const HOLD_ENDPOINTS = Object.freeze({
  startMultipart: endpoint({
    path: '/start-multipart',
    request: z.object({ did, digest: name.optional(), client_state: clientState.optional(), presign_parts: presignParts }).strict(),
    response: z.looseObject({ upload_id: z.string(), upload_name: z.string(), expires_at: z.string(), part_urls: z.array(partUrl).optional() }),
  }),
  partPresignedUrl: endpoint({
    path: '/part-presigned-url',
    request: z.object({ did, digest: name, upload_id: uploadId, part_number: partNumber, writer_epoch: writerEpoch }).strict(),
    response: presignedUrl,
  }),
  completeMultipart: endpoint({
    path: '/complete-multipart',
    request: z
      .object({
        did,
        digest: name,
        upload_id: uploadId,
        parts: z.array(z.object({ part_number: partNumber, etag, size: size.optional() }).strict()).max(MAX_PART_NUMBER),
        writer_epoch: writerEpoch,
      })
      .strict(),
    response: z.looseObject({ upload_name: z.string(), size }),
    long: true,
  }),
  abortMultipart: endpoint({
    path: '/abort-multipart',
    /** Refused (UPLOAD_STATE_CONFLICT) for an upload a `/move` is publishing: its object may be the blob's bytes. */
    request: z.object({ did, digest: name, upload_id: uploadId, writer_epoch: writerEpoch }).strict(),
    response: z.looseObject({ aborted: z.literal(true) }),
  }),
  putPresignedUrl: endpoint({
    path: '/put-presigned-url',
    request: z.object({ did, digest: name, upload_id: uploadId.optional(), offset: size.optional(), writer_epoch: writerEpoch }).strict(),
    response: presignedUrl,
  }),
  getPresignedUrl: endpoint({ path: '/get-presigned-url', request: getPresignedUrlRequest, response: presignedUrl }),
  headPresignedUrl: endpoint({ path: '/head-presigned-url', request: getPresignedUrlRequest, response: presignedUrl }),
  move: endpoint({
    path: '/move',
    /** With `parts`, the multipart upload is completed first: a commit in one call. */
    request: z
      .object({ did, from: name, to: name, size: size.optional(), parts: z.array(part).min(1).max(MAX_PART_NUMBER).optional(), writer_epoch: writerEpoch })
      .strict(),
    response: z.looseObject({ digest: z.string(), size, existed: z.boolean() }),
    acceptsQuery: true,
    long: true,
  }),
  claim: endpoint({ path: '/claim', request: digestRequest, response: blobDescriptor }),
  release: endpoint({ path: '/release', request: digestRequest, response: z.looseObject({ deleted: z.boolean(), remaining_claims: z.number().int().min(0) }) }),
  stat: endpoint({ path: '/stat', request: digestRequest, response: blobDescriptor }),
  delete: endpoint({ path: '/delete', request: digestRequest, response: z.looseObject({ deleted: z.boolean() }) }),
  uploadStatus: endpoint({
    path: '/upload-status',
    /** With `writer_epoch` above the recorded one, the caller took the upload over: the hold records it before answering. */
    request: z.object({ did, digest: name, upload_id: uploadId, presign_parts: presignParts, writer_epoch: writerEpoch }).strict(),
    response: uploadView,
  }),
  uploadProgress: endpoint({
    path: '/upload-progress',
    request: z
      .object({
        did,
        digest: name,
        upload_id: uploadId,
        base_size: size,
        parts: z.array(part).max(MAX_PART_NUMBER).optional(),
        staged: z.array(stagedSegment).max(MAX_PART_NUMBER).optional(),
        client_state: clientState.optional(),
        presign_parts: presignParts,
        writer_epoch: writerEpoch,
      })
      .strict(),
    response: uploadView,
  }),
});

export type HoldEndpointName = keyof typeof HOLD_ENDPOINTS;
export type HoldRequest<K extends HoldEndpointName> = z.output<(typeof HOLD_ENDPOINTS)[K]['request']>;
/** A request body as a client writes it: everything but `did`, which the client adds. */
export type HoldCall<K extends HoldEndpointName> = Omit<z.input<(typeof HOLD_ENDPOINTS)[K]['request']>, 'did'>;
export type HoldResponse<K extends HoldEndpointName> = z.output<(typeof HOLD_ENDPOINTS)[K]['response']>;
/** A request as the hold's handlers take it: validated, without the `did` the route checked against the caller's token. */
export type HoldInput<K extends HoldEndpointName> = Omit<HoldRequest<K>, 'did'>;

/**
 * Validates a request body against endpoint `K`'s schema. TypeScript cannot
 * follow a generic index into `HOLD_ENDPOINTS`, so the one assertion that the
 * schema of `K` parses to `HoldRequest<K>` is here.
 */
export function parseHoldRequest<K extends HoldEndpointName>(endpoint: K, body: unknown): z.ZodSafeParseResult<HoldRequest<K>> {
  return (HOLD_ENDPOINTS[endpoint].request as z.ZodType).safeParse(body) as z.ZodSafeParseResult<HoldRequest<K>>;
}

export type HoldPresignedUrl = z.output<typeof presignedUrl>;
export type HoldUploadView = z.output<typeof uploadView>;
export type HoldPart = z.output<typeof part>;
export type HoldStagedSegment = z.output<typeof stagedSegment>;
export type HoldPartUrl = z.output<typeof partUrl>;

/**
 * Every error the hold API answers with, and its status. The body is
 * `{"error":{"code":"…","message":"…"}}`.
 */
export const HOLD_ERRORS = Object.freeze({
  INVALID_REQUEST: { status: 400, message: 'the request body is not valid' },
  DIGEST_INVALID: { status: 400, message: 'digest is neither a valid content digest nor an upload name' },
  PART_NUMBER_INVALID: { status: 400, message: 'part_number must be an integer from 1 to 10000' },
  PART_TOO_SMALL: { status: 400, message: 'every part but the last must be at least 5 MiB' },
  INVALID_PART: { status: 400, message: 'a part or its ETag does not belong to this upload' },
  SIZE_INVALID: { status: 400, message: 'the object size does not match the expected size' },
  UNAUTHORIZED: { status: 401, message: 'a valid service token is required' },
  DENIED: { status: 403, message: 'the acting DID may not do this' },
  SIGNATURE_INVALID: { status: 403, message: 'the signed URL is invalid or has expired' },
  BLOB_UNKNOWN: { status: 404, message: 'no blob at that digest' },
  UPLOAD_UNKNOWN: { status: 404, message: 'no such upload for this DID' },
  NOT_FOUND: { status: 404, message: 'no such route' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'method not allowed' },
  UPLOAD_STATE_CONFLICT: { status: 409, message: 'the upload changed since it was read' },
  UPLOAD_NOT_COMPLETE: { status: 409, message: 'the upload has not been completed' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'the request body is too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'send application/json' },
  RANGE_INVALID: { status: 416, message: 'the requested range is not satisfiable' },
  INTERNAL: { status: 500, message: 'internal error' },
  UNSUPPORTED: { status: 501, message: 'the storage provider does not support this operation' },
  BACKEND_UNAVAILABLE: { status: 503, message: 'the storage backend is unavailable; retry later' },
} as const);

export type HoldErrorCode = keyof typeof HOLD_ERRORS;

export function isHoldErrorCode(value: unknown): value is HoldErrorCode {
  return typeof value === 'string' && Object.hasOwn(HOLD_ERRORS, value);
}
