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

/**
 * One upload's part sizes: the base recorded with the upload, grown on the
 * schedule above, or adopted from the length of a first request that ends
 * with 5 MiB up to one part of bytes (`WriterContext.adoptChunkSize`).
 */
export class PartSizing {
  #base: number;
  readonly equalParts: boolean;
  readonly #cap: number;
  readonly #mayAdopt: boolean;
  #maxSize: number;
  /** The part size was adopted from the first chunk; the hold has not recorded it yet. */
  #adopted = false;

  constructor(base: number, equalParts: boolean, options: { cap: number; adoptChunkSize: boolean }) {
    this.#base = base;
    this.equalParts = equalParts;
    this.#cap = options.cap;
    this.#mayAdopt = options.adoptChunkSize && !equalParts;
    this.#maxSize = maxBlobSize(base, equalParts, options.cap);
  }

  /** The size of every part but the last, before the schedule grows it: the chunk length that fills whole parts. */
  get base(): number {
    return this.#base;
  }

  /** The largest blob these sizes can hold. */
  get maxSize(): number {
    return this.#maxSize;
  }

  /** True from adopting a size until the hold records it. */
  get adopted(): boolean {
    return this.#adopted;
  }

  forPart(partNumber: number): number {
    return partSizeFor(partNumber, this.#base, this.equalParts, this.#cap);
  }

  /** Whether `length` bytes, short of a part, may become the part size (asked of a first request only). */
  mayAdopt(length: number): boolean {
    return this.#mayAdopt && length >= MIN_CONFIGURED_PART_SIZE && length < this.#base;
  }

  adopt(length: number): void {
    this.#base = length;
    this.#maxSize = maxBlobSize(this.#base, this.equalParts, this.#cap);
    this.#adopted = true;
  }

  /** The hold recorded the adopted size. */
  recorded(): void {
    this.#adopted = false;
  }
}
