import { HoldError } from '../errors.ts';
import { bareEtag } from '../../protocol/parts.ts';
import { MAX_PART_NUMBER, MIN_PART_SIZE } from '../../protocol/limits.ts';

/** The ETag as S3 wants it in CompleteMultipartUpload: one pair of quotes. */
export function normalizeEtag(etag: string): string {
  return `"${bareEtag(etag)}"`;
}

export function assertPartNumber(partNumber: number): void {
  if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > MAX_PART_NUMBER) {
    throw new HoldError('PART_NUMBER_INVALID', `part_number must be an integer from 1 to ${MAX_PART_NUMBER}, got ${partNumber}`);
  }
}

/** Parts for completion: at least one, strictly ascending, each number in range. */
export function assertCompletableParts(parts: readonly { part_number: number; etag: string }[]): void {
  if (parts.length === 0) throw new HoldError('INVALID_REQUEST', 'parts must list at least one part');
  let previous = 0;
  for (const part of parts) {
    assertPartNumber(part.part_number);
    if (part.part_number <= previous) {
      throw new HoldError('INVALID_PART', 'parts must be listed in strictly ascending part_number order');
    }
    if (normalizeEtag(part.etag) === '""') throw new HoldError('INVALID_PART', `part ${part.part_number} has an empty etag`);
    previous = part.part_number;
  }
}

/** Every part but the last must reach the S3 minimum. */
export function assertNonFinalPartSizes(parts: readonly { part_number: number; size?: number }[]): void {
  for (const part of parts.slice(0, -1)) {
    if (part.size !== undefined && part.size < MIN_PART_SIZE) {
      throw new HoldError(
        'PART_TOO_SMALL',
        `part ${part.part_number} is ${part.size} bytes; every part but the last must be at least ${MIN_PART_SIZE} bytes (5 MiB)`,
      );
    }
  }
}
