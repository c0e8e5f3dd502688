import { mappingStorageErrors } from '../storage-errors.ts';
import { discardUpload } from './discard.ts';
import type { UploadDirectory } from '../uploads/records.ts';
import type { HoldContext } from '../context.ts';

/** How much of the uploads prefix one pass covers; the next pass goes on from there. */
export interface JanitorBudget {
  /** Upload directories looked at per pass. */
  readonly directories: number;
  /** Milliseconds after which a pass starts no further directory. */
  readonly ms: number;
}

/**
 * Not in the config file: at the default hourly interval this covers 48,000
 * directories a day even where a pass stops at its time, and a pass never
 * holds a janitor timer for long.
 */
export const DEFAULT_JANITOR_BUDGET: JanitorBudget = { directories: 2000, ms: 10_000 };

/** Directories decided at once: their reads and deletions overlap. */
const CONCURRENCY = 8;
/** Orphaned keys gathered before they are deleted together. */
const DELETE_BATCH = 500;

export interface UploadSweep {
  /** Idle uploads discarded. */
  purged: number;
  /** Uploads not decided for an error (a record that could not be read); the next pass over them retries. */
  skipped: number;
  /** Keys deleted that were written after their upload ended. */
  orphans: number;
}

/** What the janitor's passes clean up: idle uploads, orphaned writes, abandoned deletions. */
export class Janitor {
  readonly #ctx: HoldContext;
  readonly #budget: JanitorBudget;
  /** The last key the previous pass covered; undefined: start from the first. */
  #cursor: string | undefined;

  constructor(ctx: HoldContext, budget: Partial<JanitorBudget> = {}) {
    this.#ctx = ctx;
    this.#budget = { ...DEFAULT_JANITOR_BUDGET, ...budget };
  }

  /**
   * One walk over the upload directories, in key order, from where the last
   * pass stopped to the end of the prefix or the budget, whichever comes
   * first; the pass after one that reached the end starts over. Each
   * directory is decided on its own (see `#decide`), so nothing is kept per
   * upload beyond the few being decided.
   */
  async sweepUploads(): Promise<UploadSweep> {
    const sweep: UploadSweep = { purged: 0, skipped: 0, orphans: 0 };
    const deadline = performance.now() + this.#budget.ms;
    const cutoff = this.#ctx.now().getTime() - this.#ctx.uploadTtlMs;
    const orphaned: string[] = [];
    const running = new Set<Promise<void>>();
    const flush = async (below: number) => {
      if (orphaned.length < below) return;
      const keys = orphaned.splice(0);
      await this.#ctx.backend.delete(keys);
      sweep.orphans += keys.length;
    };
    await mappingStorageErrors(async () => {
      let seen = 0;
      let last: string | undefined;
      let reachedEnd = true;
      try {
        for await (const directory of this.#ctx.records.directories({ startAfter: this.#cursor })) {
          // At least one directory a pass, so a pass always moves on.
          if (seen > 0 && (seen >= this.#budget.directories || performance.now() >= deadline)) {
            reachedEnd = false;
            break;
          }
          seen++;
          last = directory.keys.at(-1);
          const decision = this.#decide(directory, cutoff, sweep, orphaned).finally(() => running.delete(decision));
          running.add(decision);
          if (running.size >= CONCURRENCY) await Promise.race(running);
          await flush(DELETE_BATCH);
        }
      } finally {
        await Promise.all(running);
      }
      await flush(1);
      this.#cursor = reachedEnd ? undefined : last;
    });
    return sweep;
  }

  /**
   * Decides one upload directory. A record the listing shows was written
   * since the cutoff is not idle (every write but the janitor's own mark sets
   * `updated_at`), so it is not read. An older one is read, without
   * remembering it, and aborted if idle longer than the TTL: it is first
   * marked `purging_at` over the version found idle, so a write that came in
   * since (through any hold process) keeps the upload, and no call can use it
   * once it is marked. A directory with no record on a direct read holds only
   * what URLs that outlived their upload wrote; upload ids are never reused,
   * so a listing that raced a new upload never condemns it. An upload whose
   * record cannot be read right now is skipped, never deleted: a transient
   * error must not destroy a live push.
   */
  async #decide(directory: UploadDirectory, cutoff: number, sweep: UploadSweep, orphaned: string[]): Promise<void> {
    const { upload, session } = directory;
    const written = session?.lastModified?.getTime();
    if (written !== undefined && written > cutoff) return;
    try {
      const read = await this.#ctx.records.peek(upload);
      if (!read) {
        orphaned.push(...directory.keys.filter((key) => key !== session?.key));
        return;
      }
      let record = read.record;
      if (record.purging_at === undefined) {
        if (Date.parse(record.updated_at) > cutoff) return;
        await this.#ctx.step('purge:session-read', upload.value);
        record = { ...record, purging_at: this.#ctx.now().toISOString() };
        if (!(await this.#ctx.records.putIfUnchanged(record, read.etag))) return;
      }
      await discardUpload(this.#ctx, upload, record);
      sweep.purged++;
    } catch {
      sweep.skipped++;
    }
  }

  /** Finishes or undoes deletions whose holder died (their lease expired). */
  async finishAbandonedDeletions(): Promise<number> {
    return mappingStorageErrors(() => this.#ctx.blobs.finishAbandonedDeletions());
  }
}
