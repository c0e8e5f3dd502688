import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { GcReport } from './collector.ts';

export class GcMetrics {
  readonly #candidates: Gauge;
  readonly #deletedBytes: Counter;
  readonly #deleted: Counter<'kind'>;
  readonly #rescued: Counter;
  readonly #seconds: Histogram;
  readonly #storedBytes: Gauge<'did'>;
  readonly #perUserLabels: boolean;

  /** With `perUserLabels` off, stored bytes are one total: a DID is a user's. */
  constructor(registry: Registry, options: { perUserLabels: boolean } = { perUserLabels: false }) {
    this.#perUserLabels = options.perUserLabels;
    this.#candidates = new Gauge({ name: 'holdfast_gc_candidates', help: 'Unreferenced blobs and manifests waiting out the grace period', registers: [registry] });
    this.#deletedBytes = new Counter({ name: 'holdfast_gc_deleted_bytes_total', help: 'Blob bytes released by garbage collection', registers: [registry] });
    this.#deleted = new Counter({ name: 'holdfast_gc_deleted_total', help: 'Blobs and manifests deleted', labelNames: ['kind'] as const, registers: [registry] });
    this.#rescued = new Counter({ name: 'holdfast_gc_rescued_total', help: 'Candidates referenced again before their grace period ended', registers: [registry] });
    this.#seconds = new Histogram({ name: 'holdfast_gc_pass_seconds', help: 'Duration of garbage-collection passes', registers: [registry] });
    this.#storedBytes = options.perUserLabels
      ? new Gauge({ name: 'holdfast_stored_bytes', help: 'Bytes of live blobs by the DID that pushed them', labelNames: ['did'] as const, registers: [registry] })
      : new Gauge({ name: 'holdfast_stored_bytes', help: 'Bytes of live blobs, summed over the DIDs that pushed them', registers: [registry] });
  }

  observe(report: GcReport, bytesByDid: { did: string; bytes: number }[], candidates: number): void {
    this.#candidates.set(candidates);
    this.#deletedBytes.inc(report.deletedBytes);
    this.#deleted.inc({ kind: 'blob' }, report.deletedBlobs);
    this.#deleted.inc({ kind: 'manifest' }, report.deletedManifests);
    this.#rescued.inc(report.rescued);
    this.#seconds.observe(report.seconds);
    this.#storedBytes.reset();
    if (this.#perUserLabels) for (const { did, bytes } of bytesByDid) this.#storedBytes.set({ did }, bytes);
    else this.#storedBytes.set(bytesByDid.reduce((sum, { bytes }) => sum + bytes, 0));
  }
}
