import { MAX_PART_NUMBER, MIN_PART_SIZE } from '../protocol/limits.ts';

export const MIN_CONFIGURED_PART_SIZE = MIN_PART_SIZE;
export const MAX_CONFIGURED_PART_SIZE = 64 * 1024 * 1024;
const MAX_S3_PART_SIZE = 5 * 1024 * 1024 * 1024;
/** Where unequal parts are allowed, the part size doubles every this many parts. */
export const PARTS_PER_SIZE_STEP = 2000;

/**
 * The size of part `partNumber` (1-based). Every non-final part has exactly
 * this size. With `equalParts` (R2) it is always `base`; elsewhere it doubles
 * every 2,000 parts so a stream can outgrow 10,000 × base.
 */
export function partSizeFor(partNumber: number, base: number, equalParts: boolean, cap = MAX_S3_PART_SIZE): number {
  if (equalParts) return base;
  const step = Math.floor((partNumber - 1) / PARTS_PER_SIZE_STEP);
  return Math.max(base, Math.min(base * 2 ** step, cap, MAX_S3_PART_SIZE));
}

/** The largest blob the schedule can hold in 10,000 parts. */
export function maxBlobSize(base: number, equalParts: boolean, cap = MAX_S3_PART_SIZE): number {
  if (equalParts) return base * MAX_PART_NUMBER;
  let total = 0;
  for (let part = 1; part <= MAX_PART_NUMBER; part += PARTS_PER_SIZE_STEP) {
    total += partSizeFor(part, base, false, cap) * Math.min(PARTS_PER_SIZE_STEP, MAX_PART_NUMBER - part + 1);
  }
  return total;
}
