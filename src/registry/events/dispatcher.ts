import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { Agent, request } from 'undici';
import { depthCount, type EventOutbox, type OutboxRow } from '../../metadata/events/outbox.ts';
import type { RegistryConfig } from '../config.ts';
import { ForbiddenAddressError, type AddressPolicy } from './address-guard.ts';
import type { EventMetrics } from './metrics.ts';
import type { EventEndpoint } from './recorder.ts';
import { signDelivery } from './signature.ts';

export interface DispatcherOptions {
  outbox: EventOutbox;
  endpoints: readonly EventEndpoint[];
  policy: AddressPolicy;
  config: RegistryConfig['events'];
  metrics: EventMetrics;
  logger: Logger;
  /** Told the undelivered counts after each periodic count (the recorder's caps). */
  counted?: (depth: Awaited<ReturnType<EventOutbox['depth']>>) => void;
  /** Milliseconds; tests move it forward to simulate hours of outage. */
  now?: () => number;
}

/** Lanes (a repository's changes, or its reports) looked at per endpoint and pass; the next pass goes on from where this one stopped. */
const LANES_PER_PASS = 512;
/** Delivered rows kept at most, whatever their age: the newest events' worth. */
const KEEP_DELIVERED = 100_000;
const COUNT_EVERY_MS = 5000;
const PRUNE_EVERY_MS = 10_000;
const PRUNE_BATCH = 1000;
/** Batches per prune: up to 2,000 rows a second per instance, above what one instance delivers. */
const PRUNE_BATCHES = 20;
/** Rows of endpoints no longer configured go after `keepDeadDays`, looked for hourly (the query reads the whole table), 20 batches at most. */
const ORPHANS_EVERY_MS = 3_600_000;
/** A claim outlives the attempt (which `timeoutSeconds` bounds, connecting included) by this much; then another instance may take the event. */
const CLAIM_MARGIN_MS = 5000;

/**
 * Delivers the outbox (docs/EVENTS.md). Every instance runs one. Each pass
 * claims, per endpoint, the next event of each repository that is due, up
 * to `concurrency` attempts at once, and POSTs it signed; a repository's
 * next event waits until this one is delivered or dead, so one endpoint
 * sees one repository's events in order. Failures back off exponentially,
 * bounded in count and age. What it holds in memory is the rows in flight
 * and one lane head per lane it looks at, however deep the outbox.
 */
export class EventDispatcher {
  readonly #options: DispatcherOptions;
  readonly #instance = randomUUID();
  readonly #names: readonly string[];
  readonly #agent: Agent;
  readonly #inFlight = new Set<Promise<void>>();
  /** Attempts in flight per endpoint: one that hangs holds its share of `concurrency`, never the others'. */
  readonly #busy = new Map<string, number>();
  /** Per endpoint, the lane the last pass stopped after. */
  readonly #cursor = new Map<string, string>();
  #timer: NodeJS.Timeout | undefined;
  #nudge: NodeJS.Timeout | undefined;
  #passing: Promise<void> | undefined;
  #again = false;
  #closed = false;
  #counted = 0;
  #pruned = 0;
  #orphansPruned = 0;
  #turn = 0;
  #skew = 0;

  constructor(options: DispatcherOptions) {
    this.#options = options;
    this.#names = options.endpoints.map((endpoint) => endpoint.name);
    this.#agent = new Agent({
      connect: { lookup: options.policy.lookup, timeout: options.config.timeoutSeconds * 1000 },
      headersTimeout: options.config.timeoutSeconds * 1000,
      bodyTimeout: options.config.timeoutSeconds * 1000,
      connections: options.config.concurrency,
    });
  }

  /** Milliseconds by the database's clock (as every time in the outbox is), or the test's clock. */
  get #now(): number {
    return (this.#options.now ?? Date.now)() + this.#skew;
  }

  start(): void {
    if (this.#timer || this.#closed) return;
    this.#timer = setInterval(() => this.nudge(), this.#options.config.pollMilliseconds);
    this.#timer.unref();
    this.nudge();
  }

  /** Runs a pass soon (something was queued, or a delivery finished and its repository's next may go). */
  nudge(): void {
    if (this.#closed || this.#nudge) return;
    this.#nudge = setTimeout(() => {
      this.#nudge = undefined;
      void this.pass();
    }, 5);
    this.#nudge.unref();
  }

  /** One pass; resolves when its claims are made (not when their deliveries end: see `settle`). */
  pass(): Promise<void> {
    if (this.#passing) {
      this.#again = true;
      return this.#passing;
    }
    this.#passing = (async () => {
      try {
        do {
          this.#again = false;
          await this.#housekeeping();
          await this.#claimAndSend();
        } while (this.#again && !this.#closed);
      } catch (err) {
        this.#options.logger.warn({ err }, 'events dispatcher pass failed');
      } finally {
        this.#passing = undefined;
      }
    })();
    return this.#passing;
  }

  /** Passes until nothing is due and no delivery is in flight (tests, and `close`). */
  async settle(): Promise<void> {
    for (;;) {
      await this.pass();
      if (this.#inFlight.size === 0) return;
      await Promise.all([...this.#inFlight]);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearInterval(this.#timer);
    if (this.#nudge) clearTimeout(this.#nudge);
    await this.#passing;
    await Promise.all([...this.#inFlight]);
    await this.#agent.close();
  }

  async #claimAndSend(): Promise<void> {
    const endpoints = this.#options.endpoints;
    const share = Math.ceil(this.#options.config.concurrency / endpoints.length);
    const first = this.#turn++;
    for (let i = 0; i < endpoints.length && !this.#closed; i++) {
      const endpoint = endpoints[(first + i) % endpoints.length] as EventEndpoint;
      const free = Math.min(this.#options.config.concurrency - this.#inFlight.size, share - (this.#busy.get(endpoint.name) ?? 0));
      if (free <= 0) continue;
      const now = this.#now;
      const due = await this.#options.outbox.due(endpoint.name, now, { want: free, lanes: LANES_PER_PASS, after: this.#cursor.get(endpoint.name) ?? '' });
      this.#cursor.set(endpoint.name, due.next);
      if (due.seqs.length === 0) continue;
      const claimed = await this.#options.outbox.claim(due.seqs, this.#instance, now + this.#options.config.timeoutSeconds * 1000 + CLAIM_MARGIN_MS, now);
      for (const row of claimed) {
        this.#busy.set(endpoint.name, (this.#busy.get(endpoint.name) ?? 0) + 1);
        const delivery = this.#deliver(endpoint, row).finally(() => {
          this.#busy.set(endpoint.name, (this.#busy.get(endpoint.name) ?? 1) - 1);
          this.#inFlight.delete(delivery);
          this.nudge();
        });
        this.#inFlight.add(delivery);
      }
    }
  }

  async #deliver(endpoint: EventEndpoint, row: OutboxRow): Promise<void> {
    const started = performance.now();
    let failure: string | undefined;
    try {
      await this.#options.policy.checkLiteral(endpoint.url);
      const timestamp = Math.floor(this.#now / 1000);
      const response = await request(endpoint.url, {
        method: 'POST',
        dispatcher: this.#agent,
        headers: {
          'content-type': 'application/cloudevents+json; charset=utf-8',
          'user-agent': 'holdfast-events/1',
          'webhook-id': row.id,
          'webhook-timestamp': String(timestamp),
          'webhook-signature': signDelivery(endpoint.secret, row.id, timestamp, row.body),
        },
        body: row.body,
        signal: AbortSignal.timeout(this.#options.config.timeoutSeconds * 1000),
      });
      await response.body.dump({ limit: 64 * 1024 }).catch(() => {});
      if (response.statusCode < 200 || response.statusCode > 299) failure = `HTTP ${response.statusCode}`;
    } catch (err) {
      failure = describeFailure(err);
    }
    this.#options.metrics.seconds.observe({ endpoint: endpoint.name }, (performance.now() - started) / 1000);
    const now = this.#now;
    try {
      if (failure === undefined) {
        await this.#options.outbox.delivered(row.seq, now);
        this.#options.metrics.delivered.inc({ endpoint: endpoint.name });
        return;
      }
      this.#options.metrics.failed.inc({ endpoint: endpoint.name });
      const retry = this.#options.config.retry;
      const attempts = row.attempts + 1;
      const dead = attempts >= retry.maxAttempts || now - row.createdAt >= retry.maxAgeHours * 3_600_000;
      const delay = Math.min(retry.firstDelaySeconds * 2 ** (attempts - 1), retry.maxDelaySeconds) * 1000 * (0.8 + Math.random() * 0.4);
      await this.#options.outbox.failed(row.seq, now, { nextAt: now + Math.round(delay), dead, error: failure });
      if (dead) {
        this.#options.metrics.dead.inc({ endpoint: endpoint.name });
        this.#options.logger.warn({ endpoint: endpoint.name, event: row.id, seq: row.seq, attempts, error: failure }, 'event is dead after its last attempt; `holdfast events redeliver` sends it again');
      }
    } catch (err) {
      // The claim runs out and another pass tries again: at least once, under the same id.
      this.#options.logger.warn({ err, endpoint: endpoint.name, seq: row.seq }, 'could not record a delivery attempt');
    }
  }

  async #housekeeping(): Promise<void> {
    const now = this.#now;
    const wall = Date.now();
    const config = this.#options.config;
    if (wall - this.#counted >= COUNT_EVERY_MS) {
      this.#counted = wall;
      this.#skew = await this.#options.outbox.clockSkew();
      const depth = await this.#options.outbox.depth();
      this.#options.counted?.(depth);
      this.#options.metrics.observeDepth(this.#names, depth, now);
      // Dead rows past the cap go, oldest first: an outage cannot leave more than `maxQueued` of them per endpoint.
      for (const name of this.#names) {
        const dead = depthCount(depth, name, 'dead');
        if (dead > config.maxQueued) await this.#options.outbox.purgeDead(name, Math.min(dead - config.maxQueued, PRUNE_BATCH * PRUNE_BATCHES));
      }
    }
    if (wall - this.#pruned >= PRUNE_EVERY_MS) {
      this.#pruned = wall;
      if (wall - this.#orphansPruned >= ORPHANS_EVERY_MS) {
        this.#orphansPruned = wall;
        for (let batch = 0; batch < PRUNE_BATCHES && !this.#closed; batch++) {
          if ((await this.#options.outbox.pruneOrphans(this.#names, now - config.keepDeadDays * 86_400_000, PRUNE_BATCH)) < PRUNE_BATCH) break;
        }
      }
      const limits = { deliveredBefore: now - config.keepDeliveredHours * 3_600_000, keepDelivered: KEEP_DELIVERED, deadBefore: now - config.keepDeadDays * 86_400_000, limit: PRUNE_BATCH };
      for (let batch = 0; batch < PRUNE_BATCHES && !this.#closed; batch++) {
        if ((await this.#options.outbox.prune(limits)) < PRUNE_BATCH) break;
      }
    }
  }
}

/** What a failed attempt records and logs: a code or a status, never the URL (its query may hold a secret). */
function describeFailure(err: unknown): string {
  if (err instanceof ForbiddenAddressError) return err.message;
  const error = err as { code?: unknown; name?: unknown; cause?: { code?: unknown } };
  if (typeof error.cause?.code === 'string') return error.cause.code;
  if (typeof error.code === 'string') return error.code;
  return typeof error.name === 'string' ? error.name : 'delivery failed';
}
