import type { Logger } from 'pino';
import type { Db } from '../../metadata/db.ts';
import { EventOutbox, reportsLane, type OutboxDepth, type OutboxEntry } from '../../metadata/events/outbox.ts';
import type { ChangeCause, ChangeListener } from '../../metadata/oci/types.ts';
import type { EventKind } from '../config.ts';
import { namespaceOf } from '../auth/access.ts';
import { compileGlob, type Matcher } from '../policies/glob.ts';
import { cloudEvent, kindOf, repositoryOf, type RegistryEvent } from './cloudevents.ts';
import type { EventMetrics } from './metrics.ts';

/** An endpoint as configured, with its secret read and its patterns compiled. */
export interface EventEndpoint {
  name: string;
  url: URL;
  secret: string;
  covers: Matcher;
  kinds: ReadonlySet<EventKind>;
}

export function resolveEndpoint(config: { name: string; url: string; repositories: readonly string[]; events: readonly EventKind[] }, secret: string): EventEndpoint {
  const patterns = config.repositories.map(compileGlob);
  return { name: config.name, url: new URL(config.url), secret, covers: (name) => patterns.some((covers) => covers(name)), kinds: new Set(config.events) };
}

export interface RecorderOptions {
  db: Db;
  endpoints: readonly EventEndpoint[];
  source: string;
  maxQueued: number;
  maxQueuedPerNamespace: number;
  pulls: { sampleRate: number; maxPerSecond: number };
  metrics: EventMetrics;
  logger: Logger;
  /** Told after this process queued something, so its dispatcher need not wait for its next poll. */
  queued?: () => void;
  random?: () => number;
}

/**
 * Turns what happened into outbox rows, one per endpoint that wants it.
 * Changes are queued inside their own transaction (`changed`, the metadata
 * store's listener); pulls and quota refusals change nothing, so they are
 * queued on their own, sampled and rate-limited.
 *
 * The caps count pending events: per endpoint (reports, i.e. pulls and
 * quota refusals, may take half of it), and per namespace for its changes
 * and, apart, for its reports, so neither anonymous pulls nor one tenant
 * crowd out another's changes. They are
 * checked against counts the dispatcher refreshes every few seconds plus
 * what this process queued since, so a check costs no query; instances may
 * together pass a cap by what they queue in between.
 */
export class EventRecorder {
  readonly #options: RecorderOptions;
  #queued = new Map<string, number>();
  #pullTokens: number;
  #pullRefilled = Date.now();
  readonly #quotaReported = new Map<string, number>();
  #droppedLogged = 0;

  constructor(options: RecorderOptions) {
    this.#options = options;
    this.#pullTokens = options.pulls.maxPerSecond;
  }

  get enabled(): boolean {
    return this.#options.endpoints.length > 0;
  }

  /** The metadata store's listener: queues the change's events in its transaction. */
  readonly changed: ChangeListener = async (tx, changes, cause) => {
    const entries = changes.flatMap((change) => this.#entries({ change, cause }));
    if (entries.length === 0) return;
    await EventOutbox.append(tx, entries, { ordered: true });
    this.#options.queued?.();
  };

  /** A manifest GET, if sampled. Never fails the pull: a failure to queue is logged. */
  pulled(change: Extract<RegistryEvent['change'], { kind: 'manifest.pulled' }>, cause: ChangeCause): void {
    if (!this.enabled || this.#options.pulls.sampleRate === 0) return;
    if ((this.#options.random ?? Math.random)() >= this.#options.pulls.sampleRate || !this.#takePullToken()) return;
    this.#queueAlone({ change, cause });
  }

  /** A push refused by a namespace quota: at most one event per namespace a minute from this instance. */
  quotaExceeded(change: Extract<RegistryEvent['change'], { kind: 'quota.exceeded' }>, cause: ChangeCause): void {
    if (!this.enabled) return;
    const now = Date.now();
    const last = this.#quotaReported.get(change.namespace);
    if (last !== undefined && now - last < 60_000) return;
    if (this.#quotaReported.size >= 10_000) {
      for (const [namespace, at] of this.#quotaReported) if (now - at >= 60_000) this.#quotaReported.delete(namespace);
      if (this.#quotaReported.size >= 10_000) return;
    }
    this.#quotaReported.set(change.namespace, now);
    this.#queueAlone({ change, cause });
  }

  /** The pending counts the caps are checked against (from the dispatcher's periodic count). */
  setDepth(depth: readonly OutboxDepth[]): void {
    const counts = new Map<string, number>();
    const add = (key: string, count: number) => counts.set(key, (counts.get(key) ?? 0) + count);
    for (const row of depth) {
      if (row.state !== 'pending') continue;
      add(row.endpoint, row.count);
      add(shareKey(row.endpoint, row.namespace, isReport(row.type)), row.count);
    }
    this.#queued = counts;
  }

  #queueAlone(event: RegistryEvent): void {
    const entries = this.#entries(event);
    if (entries.length === 0) return;
    void this.#options.db
      .transaction((tx) => EventOutbox.append(tx, entries, { ordered: false }))
      .then(() => this.#options.queued?.())
      .catch((err: unknown) => this.#options.logger.warn({ err, type: event.change.kind }, 'could not queue an event'));
  }

  #entries(event: RegistryEvent): OutboxEntry[] {
    const kind = kindOf(event);
    const repository = repositoryOf(event);
    const namespace = repository === '' ? '' : namespaceOf(repository);
    const report = isReport(kind);
    const endpoints = this.#options.endpoints.filter((endpoint) => endpoint.kinds.has(kind) && (repository === '' || endpoint.covers(repository)));
    if (endpoints.length === 0) return [];
    const { id, body } = cloudEvent(event, this.#options.source, new Date());
    const entries: OutboxEntry[] = [];
    for (const endpoint of endpoints) {
      const share = shareKey(endpoint.name, namespace, report);
      // Reports may fill half the endpoint's queue at most: the rest stays for changes.
      const room = report ? Math.floor(this.#options.maxQueued / 2) : this.#options.maxQueued;
      const full = (this.#queued.get(endpoint.name) ?? 0) >= room ? 'outbox_full' : namespace !== '' && (this.#queued.get(share) ?? 0) >= this.#options.maxQueuedPerNamespace ? 'namespace_share_full' : undefined;
      if (full) {
        this.#options.metrics.dropped.inc({ endpoint: endpoint.name, reason: full });
        this.#logDrop(endpoint.name, full);
        continue;
      }
      this.#queued.set(endpoint.name, (this.#queued.get(endpoint.name) ?? 0) + 1);
      this.#queued.set(share, (this.#queued.get(share) ?? 0) + 1);
      this.#options.metrics.queued.inc({ endpoint: endpoint.name, type: kind });
      entries.push({ id, endpoint: endpoint.name, lane: report ? reportsLane(repository) : repository, repository, namespace, type: kind, body });
    }
    return entries;
  }

  #logDrop(endpoint: string, reason: string): void {
    const now = Date.now();
    if (now - this.#droppedLogged < 60_000) return;
    this.#droppedLogged = now;
    this.#options.logger.warn({ endpoint, reason }, 'events outbox full for this endpoint: new events are dropped (holdfast_events_dropped_total) until it drains');
  }

  #takePullToken(): boolean {
    const now = Date.now();
    const rate = this.#options.pulls.maxPerSecond;
    this.#pullTokens = Math.min(rate, this.#pullTokens + ((now - this.#pullRefilled) / 1000) * rate);
    this.#pullRefilled = now;
    if (this.#pullTokens < 1) return false;
    this.#pullTokens -= 1;
    return true;
  }
}

/** Pulls and quota refusals: reports of what changed nothing, with a lane and a share of their own. */
function isReport(kind: string): boolean {
  return kind === 'manifest.pulled' || kind === 'quota.exceeded';
}

function shareKey(endpoint: string, namespace: string, report: boolean): string {
  return `${endpoint}\0${namespace}\0${report ? 'reports' : 'changes'}`;
}
