import type { Logger } from 'pino';
import { Counter, Histogram, type Registry as MetricsRegistry } from 'prom-client';
import type { RetentionStore } from '../../metadata/oci/retention.ts';
import type { Page } from '../../metadata/oci/types.ts';
import { compileGlob } from './glob.ts';
import type { ImmutableTags } from './immutable.ts';
import { planRetention, type RetentionRule } from './retention-plan.ts';

export interface RetentionItem {
  kind: 'tag' | 'manifest';
  repository: string;
  tag?: string;
  digest: string;
  /** The rule's index in `policies.retention`, and its repositories pattern. */
  rule: number;
  pattern: string;
  reason: string;
  /** `skipped`: a push changed it after the pass read the repository, so it stays. */
  action: 'deleted' | 'would-delete' | 'skipped';
}

export interface RetentionReport {
  dryRun: boolean;
  startedAt: string;
  seconds: number;
  /** Repositories a rule covered. */
  repositories: number;
  deletedTags: number;
  deletedManifests: number;
  skipped: number;
  /** Every tag and manifest the pass removed or would remove; only when asked for (a pass may remove millions). */
  items?: RetentionItem[];
}

export interface RetentionOptions {
  rules: readonly RetentionRule[];
  store: RetentionStore;
  listRepositories(page: Page): Promise<string[]>;
  immutableTags: ImmutableTags;
  metrics?: MetricsRegistry;
  logger?: Logger;
  now?: () => Date;
  /** Test-only: awaited after a repository's plan is made, before anything is deleted. */
  onPlanned?: (repository: string) => Promise<void>;
}

const PAGE = 1000;

/**
 * Retention (docs/POLICIES.md): deletes tags and manifests the rules select,
 * repository by repository. The GC then frees their blobs under its own
 * grace period. Every delete is conditional on what the plan read, so a push
 * racing the pass keeps what it pushed.
 */
export class Retention {
  readonly #options: RetentionOptions;
  readonly #rules: { rule: RetentionRule; index: number; covers: (name: string) => boolean }[];
  readonly #deleted: Counter<'kind'> | undefined;
  readonly #seconds: Histogram | undefined;
  #running: Promise<RetentionReport> | undefined;

  constructor(options: RetentionOptions) {
    this.#options = options;
    this.#rules = options.rules.map((rule, index) => ({ rule, index, covers: compileGlob(rule.repositories) }));
    if (options.metrics) {
      this.#deleted = new Counter({ name: 'holdfast_retention_deleted_total', help: 'Tags and manifests deleted by retention', labelNames: ['kind'] as const, registers: [options.metrics] });
      this.#seconds = new Histogram({ name: 'holdfast_retention_pass_seconds', help: 'Duration of retention passes', registers: [options.metrics] });
    }
  }

  get configured(): boolean {
    return this.#rules.length > 0;
  }

  /** Runs a pass; a pass already running is shared rather than doubled (unless a dry run, or items are asked for). */
  run(options: { dryRun?: boolean; items?: boolean } = {}): Promise<RetentionReport> {
    if (options.dryRun || options.items) return this.#pass(options.dryRun === true, options.items === true);
    this.#running ??= this.#pass(false, false).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #pass(dryRun: boolean, collect: boolean): Promise<RetentionReport> {
    const clock = this.#options.now ?? (() => new Date());
    const started = clock();
    const report: RetentionReport = { dryRun, startedAt: started.toISOString(), seconds: 0, repositories: 0, deletedTags: 0, deletedManifests: 0, skipped: 0, ...(collect ? { items: [] } : {}) };
    if (this.#rules.length === 0) return report;
    let last: string | undefined;
    for (;;) {
      const names = await this.#options.listRepositories({ n: PAGE, ...(last !== undefined ? { last } : {}) });
      for (const name of names) {
        const match = this.#rules.find((rule) => rule.covers(name));
        if (match) await this.#repository(name, match, clock(), dryRun, report);
      }
      if (names.length < PAGE) break;
      last = names[names.length - 1];
    }
    report.seconds = (clock().getTime() - started.getTime()) / 1000;
    if (!dryRun) {
      this.#deleted?.inc({ kind: 'tag' }, report.deletedTags);
      this.#deleted?.inc({ kind: 'manifest' }, report.deletedManifests);
      this.#seconds?.observe(report.seconds);
      this.#options.logger?.info(
        { repositories: report.repositories, deletedTags: report.deletedTags, deletedManifests: report.deletedManifests, skipped: report.skipped, seconds: report.seconds },
        'retention pass finished',
      );
    }
    return report;
  }

  async #repository(name: string, match: { rule: RetentionRule; index: number }, now: Date, dryRun: boolean, report: RetentionReport): Promise<void> {
    const { store } = this.#options;
    report.repositories++;
    const plan = planRetention(match.rule, await store.snapshot(name), now, this.#options.immutableTags.in(name));
    await this.#options.onPlanned?.(name);
    const record = (item: Omit<RetentionItem, 'repository' | 'rule' | 'pattern'>) => {
      if (item.action === 'skipped') report.skipped++;
      report.items?.push({ ...item, repository: name, rule: match.index, pattern: match.rule.repositories });
    };
    const deletedTags = dryRun ? new Set<string>() : await store.deleteTags(name, plan.tags.map((item) => item.row));
    for (const { row, reason } of plan.tags) {
      const action = dryRun ? 'would-delete' : deletedTags.has(row.tag) ? 'deleted' : 'skipped';
      if (action === 'deleted') report.deletedTags++;
      record({ kind: 'tag', tag: row.tag, digest: row.digest, reason, action });
    }
    for (let start = 0; start < plan.manifests.length; ) {
      const layer = plan.manifests[start]?.layer;
      let end = start;
      while (end < plan.manifests.length && plan.manifests[end]?.layer === layer) end++;
      const items = plan.manifests.slice(start, end);
      const deleted = dryRun ? new Set<string>() : await store.deleteManifests(name, items.map((item) => item.row));
      for (const { row, reason } of items) {
        const action = dryRun ? 'would-delete' : deleted.has(row.digest) ? 'deleted' : 'skipped';
        if (action === 'deleted') report.deletedManifests++;
        record({ kind: 'manifest', digest: row.digest, reason, action });
      }
      start = end;
    }
  }
}
