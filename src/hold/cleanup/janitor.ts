import { orphanKeys } from '../uploads/records.ts';
import { mappingStorageErrors } from '../storage-errors.ts';
import { discardUpload } from './discard.ts';
import type { HoldContext } from '../context.ts';

/** What the janitor's passes clean up: idle uploads, orphaned writes, abandoned deletions. */
export class Janitor {
  readonly #ctx: HoldContext;

  constructor(ctx: HoldContext) {
    this.#ctx = ctx;
  }

  /**
   * Aborts uploads idle longer than the TTL. The record is first marked
   * `purging_at` over the version found idle, so a write that came in since
   * (through any hold process) keeps the upload, and no call can use it once
   * it is marked. An upload whose record cannot be read right now is skipped,
   * never deleted: a transient error must not destroy a live push.
   */
  async purgeIdleUploads(): Promise<{ purged: number; skipped: number }> {
    const cutoff = this.#ctx.now().getTime() - this.#ctx.uploadTtlMs;
    let purged = 0;
    let skipped = 0;
    await mappingStorageErrors(async () => {
      for await (const upload of this.#ctx.records.uploads()) {
        try {
          const read = await this.#ctx.records.read(upload);
          if (!read) continue;
          let record = read.record;
          if (record.purging_at === undefined) {
            if (Date.parse(record.updated_at) > cutoff) continue;
            await this.#ctx.step('purge:session-read', upload.value);
            record = { ...record, purging_at: this.#ctx.now().toISOString() };
            if (!(await this.#ctx.records.putIfUnchanged(record, read.etag))) continue;
          }
          await discardUpload(this.#ctx, upload, record);
          purged++;
        } catch {
          skipped++;
        }
      }
    });
    return { purged, skipped };
  }

  /** Deletes what URLs that outlived their uploads wrote (see `orphanKeys`); resolves to how many keys. */
  async collectOrphans(): Promise<number> {
    return mappingStorageErrors(async () => {
      const keys: string[] = [];
      for await (const key of orphanKeys(this.#ctx.records, this.#ctx.backend, this.#ctx.prefix)) keys.push(key);
      await this.#ctx.backend.delete(keys);
      return keys.length;
    });
  }

  /** Finishes or undoes deletions whose holder died (their lease expired). */
  async finishAbandonedDeletions(): Promise<number> {
    return mappingStorageErrors(() => this.#ctx.blobs.finishAbandonedDeletions());
  }
}
