import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { depthCount, type OutboxDepth } from '../../metadata/events/outbox.ts';

/** `/metrics` for events: labelled by endpoint name, never by URL. */
export class EventMetrics {
  readonly queued: Counter<'endpoint' | 'type'>;
  readonly dropped: Counter<'endpoint' | 'reason'>;
  readonly delivered: Counter<'endpoint'>;
  readonly failed: Counter<'endpoint'>;
  readonly dead: Counter<'endpoint'>;
  readonly seconds: Histogram<'endpoint'>;
  readonly #depth: Gauge<'endpoint' | 'state'>;
  readonly #oldest: Gauge<'endpoint'>;

  constructor(registry: Registry) {
    const registers = [registry];
    this.queued = new Counter({ name: 'holdfast_events_queued_total', help: 'Events written to the outbox by this instance, per endpoint and type', labelNames: ['endpoint', 'type'] as const, registers });
    this.dropped = new Counter({
      name: 'holdfast_events_dropped_total',
      help: 'Events not queued because the outbox held events.maxQueued for the endpoint, or maxQueuedPerNamespace for the namespace',
      labelNames: ['endpoint', 'reason'] as const,
      registers,
    });
    this.delivered = new Counter({ name: 'holdfast_events_delivered_total', help: 'Deliveries a receiver answered with 2xx', labelNames: ['endpoint'] as const, registers });
    this.failed = new Counter({ name: 'holdfast_events_failed_attempts_total', help: 'Delivery attempts that failed (to be retried, or dead)', labelNames: ['endpoint'] as const, registers });
    this.dead = new Counter({ name: 'holdfast_events_dead_total', help: 'Events whose retries ran out (list and redeliver with `holdfast events`)', labelNames: ['endpoint'] as const, registers });
    this.seconds = new Histogram({ name: 'holdfast_events_delivery_seconds', help: 'Time of one delivery attempt', labelNames: ['endpoint'] as const, buckets: [0.005, 0.025, 0.1, 0.5, 2, 10, 30], registers });
    this.#depth = new Gauge({ name: 'holdfast_events_outbox_depth', help: 'Undelivered events in the outbox (all instances), per endpoint and state', labelNames: ['endpoint', 'state'] as const, registers });
    this.#oldest = new Gauge({ name: 'holdfast_events_oldest_undelivered_seconds', help: 'Age of the oldest pending event, per endpoint', labelNames: ['endpoint'] as const, registers });
  }

  /** From the dispatcher's periodic count; endpoints with nothing queued read 0. */
  observeDepth(endpoints: readonly string[], depth: readonly OutboxDepth[], now: number): void {
    for (const endpoint of endpoints) {
      const pending = depth.filter((row) => row.endpoint === endpoint && row.state === 'pending');
      this.#depth.set({ endpoint, state: 'pending' }, depthCount(depth, endpoint, 'pending'));
      this.#depth.set({ endpoint, state: 'dead' }, depthCount(depth, endpoint, 'dead'));
      this.#oldest.set({ endpoint }, pending.length === 0 ? 0 : Math.max(0, (now - Math.min(...pending.map((row) => row.oldest))) / 1000));
    }
  }
}
