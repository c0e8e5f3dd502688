/** S3's multipart rules, which both the hold and the driver hold uploads to. */

/** Every part but the last is at least this long. */
export const MIN_PART_SIZE = 5 * 1024 * 1024;
/** Part numbers run from 1 to this. */
export const MAX_PART_NUMBER = 10_000;
/** CopyObject stops here; above it, UploadPartCopy. */
export const MAX_SINGLE_COPY_BYTES = 5 * 1024 * 1024 * 1024;

/** Most part URLs one hold answer presigns ahead (`presign_parts`). */
export const MAX_PRESIGNED_PARTS = 16;
