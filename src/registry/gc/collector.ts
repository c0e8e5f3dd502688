import type { Logger } from 'pino';
import type { StorageDriver } from '../http/context.ts';
import type { GcCandidate, GcStore } from '../../metadata/oci/gc.ts';
import type { GcMetrics } from './metrics.ts';

export interface GcOptions {
  store: GcStore;
  storage: StorageDriver;
  /** The DID the registry acts as when it releases blobs at the hold (needs write). */
  did: string;
  graceSeconds: number;
  /**
   * A blob left in `deleting` this long is taken to be abandoned (the pass
   * releasing it died) and another pass takes its deletion over. Default 600.
   */
  deletingTimeoutSeconds?: number;
  /** Blobs released at the hold at once. Default 8. */
  releaseConcurrency?: number;
  metrics?: GcMetrics;
  logger?: Logger;
  now?: () => Date;
}

export const DEFAULT_DELETING_TIMEOUT_SECONDS = 600;

export interface GcItem {
  kind: GcCandidate['kind'];
  repository?: string;
  digest: string;
  size: number;
  /** What this pass did, or (dry run) would do. */
  action: 'deleted' | 'would-delete' | 'waiting' | 'rescued' | 'kept-by-another-registry' | 'failed';
  reason: string;
}

export interface GcReport {
  dryRun: boolean;
  startedAt: string;
  seconds: number;
  graceSeconds: number;
  deletedManifests: number;
  deletedBlobs: number;
  deletedBytes: number;
  rescued: number;
  waiting: number;
  /** Queued blobs and manifests this pass checked for references (what changed since the last pass). */
  reviewed: number;
  /** The first `MAX_REPORT_ITEMS` candidates, with what happened to each; `itemsOmitted` counts the rest. */
  items: GcItem[];
  itemsOmitted: number;
}

/** Items a report lists: enough to read, a bounded amount of memory however much a pass finds. */
export const MAX_REPORT_ITEMS = 1000;

/**
 * One garbage-collection pass, online: manifests first (deleting an untagged
 * manifest can orphan blobs), then blobs. A candidate is deleted only after it
 * has stayed unreferenced for the grace period; see docs/GC.md for why a
 * concurrent push can never end up with a manifest pointing at a deleted blob.
 */
export class GarbageCollector {
  readonly #options: GcOptions;
  #running: Promise<GcReport> | undefined;

  constructor(options: GcOptions) {
    this.#options = options;
  }

  /** Runs a pass; a pass already running is shared rather than doubled. */
  run(options: { dryRun?: boolean } = {}): Promise<GcReport> {
    if (options.dryRun) return this.#pass(true);
    this.#running ??= this.#pass(false).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(dryRun: boolean): Promise<GcReport> {
    const { store, graceSeconds } = this.#options;
    const clock = this.#options.now ?? (() => new Date());
    const started = clock();
    const cutoff = new Date(started.getTime() - graceSeconds * 1000);
    const report: GcReport = {
      dryRun,
      startedAt: started.toISOString(),
      seconds: 0,
      graceSeconds,
      deletedManifests: 0,
      deletedBlobs: 0,
      deletedBytes: 0,
      rescued: 0,
      waiting: 0,
      reviewed: 0,
      items: [],
      itemsOmitted: 0,
    };
    if (dryRun) {
      for (const kind of ['manifest', 'blob'] as const) {
        for (const source of [store.candidates(kind), store.previewReview(kind, started)]) {
          for await (const candidate of source) {
            const due = candidate.markedAt <= cutoff;
            list(report, item(candidate, due ? 'would-delete' : 'waiting', reasonFor(candidate, due, graceSeconds)));
          }
        }
      }
      report.seconds = (clock().getTime() - started.getTime()) / 1000;
      return report;
    }

    report.reviewed += (await store.review('manifest', started)).reviewed;
    for await (const candidate of store.candidates('manifest')) {
      const outcome = await store.sweepManifest(candidate, cutoff);
      this.#count(report, candidate, outcome === 'deleted' ? 'deleted' : outcome === 'rescued' ? 'rescued' : 'waiting');
    }
    report.reviewed += (await store.review('blob', started)).reviewed;
    const deletingTimeoutMs = (this.#options.deletingTimeoutSeconds ?? DEFAULT_DELETING_TIMEOUT_SECONDS) * 1000;
    const releasing = new Set<Promise<void>>();
    let failure: { err: unknown } | undefined;
    for await (const candidate of store.candidates('blob')) {
      if (failure) break;
      const task: Promise<void> = this.#sweepBlob(report, candidate, cutoff, clock, deletingTimeoutMs)
        .catch((err: unknown) => void (failure ??= { err }))
        .finally(() => releasing.delete(task));
      releasing.add(task);
      if (releasing.size >= (this.#options.releaseConcurrency ?? 8)) await Promise.race(releasing);
    }
    await Promise.all(releasing);
    if (failure) throw failure.err;
    report.seconds = (clock().getTime() - started.getTime()) / 1000;
    this.#options.metrics?.observe(report, await store.bytesByDid(), await store.candidateCount());
    const { startedAt, seconds, deletedManifests, deletedBlobs, deletedBytes, waiting } = report;
    await store.recordPass({ startedAt, seconds, deletedManifests, deletedBlobs, deletedBytes, waiting });
    this.#options.logger?.info(
      { reviewed: report.reviewed, deletedManifests: report.deletedManifests, deletedBlobs: report.deletedBlobs, deletedBytes: report.deletedBytes, rescued: report.rescued, seconds: report.seconds },
      'gc pass finished',
    );
    return report;
  }

  async #sweepBlob(report: GcReport, candidate: GcCandidate, cutoff: Date, clock: () => Date, deletingTimeoutMs: number): Promise<void> {
    const { store } = this.#options;
    const now = clock();
    const outcome = await store.sweepBlob(candidate, cutoff, { now, staleBefore: new Date(now.getTime() - deletingTimeoutMs) });
    if (outcome !== 'delete') {
      this.#count(report, candidate, outcome === 'rescued' ? 'rescued' : 'waiting');
      return;
    }
    try {
      const deleted = await this.#options.storage.blobStore(this.#options.did).release(candidate.digest);
      await store.finishBlob(candidate, now);
      this.#count(report, candidate, deleted ? 'deleted' : 'kept-by-another-registry');
    } catch (err) {
      // Stays `deleting` and a candidate: a pass after the deletion timeout retries the release.
      this.#options.logger?.warn({ err, digest: candidate.digest }, 'gc could not release a blob; will retry');
      this.#count(report, candidate, 'failed');
    }
  }

  #count(report: GcReport, candidate: GcCandidate, action: GcItem['action']): void {
    if (action === 'deleted' && candidate.kind === 'manifest') report.deletedManifests++;
    if (action === 'deleted' && candidate.kind === 'blob') {
      report.deletedBlobs++;
      report.deletedBytes += candidate.size;
    }
    if (action === 'rescued') report.rescued++;
    if (action === 'waiting') report.waiting++;
    list(report, item(candidate, action, action));
  }
}

function list(report: GcReport, entry: GcItem): void {
  if (report.items.length < MAX_REPORT_ITEMS) report.items.push(entry);
  else report.itemsOmitted++;
}

function item(candidate: GcCandidate, action: GcItem['action'], reason: string): GcItem {
  return {
    kind: candidate.kind,
    ...(candidate.repository ? { repository: candidate.repository } : {}),
    digest: candidate.digest,
    size: candidate.size,
    action,
    reason,
  };
}

function reasonFor(candidate: GcCandidate, due: boolean, graceSeconds: number): string {
  const what = candidate.kind === 'blob' ? 'no manifest references this blob' : 'untagged and unreferenced manifest';
  return due ? `${what}; unreferenced since ${candidate.markedAt.toISOString()}, past the ${graceSeconds}s grace period` : `${what}; inside the ${graceSeconds}s grace period`;
}
