import type { DigestAlgorithm } from '../core/digest.ts';
import type { HoldBlobWriter } from './blob-writer.ts';
import type { HoldClient } from './hold-client.ts';
import type { HoldPart, HoldPartUrl, HoldStagedSegment } from '../protocol/hold-api.ts';
import type { MemoryBudget } from './memory-budget.ts';
import type { Transport } from './transport.ts';
import type { WriterStepHook } from './writer-steps.ts';
import { MAX_PRESIGNED_PARTS } from '../protocol/limits.ts';

/** What every writer of one driver shares. */
export interface WriterContext {
  readonly did: string;
  readonly hold: HoldClient;
  readonly transport: Transport;
  readonly budget: MemoryBudget;
  readonly maxPartsInFlight: number;
  /** How long a write may wait for the memory budget before failing with UNAVAILABLE. */
  readonly bufferWaitMs: number;
  /** No part grows beyond this (the memory budget). */
  readonly maxPartSize: number;
  /**
   * A first request that ends with 5 MiB up to one part of bytes makes its
   * length the upload's part size, so a client that PATCHes in fixed chunks
   * fills whole parts and nothing is staged. Off where parts must stay equal
   * to the configured size (r2) or should be large (storj segments).
   */
  readonly adoptChunkSize: boolean;
  /** Called when a writer is finished or broken, so caches drop it. */
  readonly retire: (writer: HoldBlobWriter) => void;
  /** Awaited at each step of a write or commit; a no-op but in tests. */
  readonly step: WriterStepHook;
}

/** Which multipart upload at the hold a writer's modules act on. */
export interface UploadRef {
  readonly uploadName: string;
  readonly uploadId: string;
}

/** An upload's durable state as the hold reports it. */
export interface UploadSnapshot {
  uploadName: string;
  uploadId: string;
  startedAt: Date;
  parts: readonly HoldPart[];
  staged: readonly HoldStagedSegment[];
  size: number;
  /** Set when the hold has already assembled the parts: only verify and publish remain. */
  completedSize?: number;
  partSize: number;
  equalParts: boolean;
  algorithm: DigestAlgorithm;
  /** Part URLs the hold presigned with this state, for the parts after `parts`. */
  partUrls?: readonly HoldPartUrl[];
  /** When the hold lets this state expire: it moves with every update of the upload's record. */
  expiresAt: string;
  /** A writer once took the upload over from one whose lease ran out (see the contract's `taken_over`). */
  takenOver?: boolean;
}

/**
 * How many part URLs to ask the hold for with each answer: as many as it
 * gives, since requests of whole parts need no hold call while URLs last
 * (`UploadRecord`), and presigning costs the hold no storage call.
 */
export const PRESIGN_AHEAD = MAX_PRESIGNED_PARTS;
