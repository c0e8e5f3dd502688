import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** One registry per hold instance, so several can live in one process (tests). */
export class HoldMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'holdfast_hold_requests_total',
    help: 'Hold API requests by endpoint, method and status',
    labelNames: ['endpoint', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly storageLatency = new Histogram({
    name: 'holdfast_hold_storage_call_seconds',
    help: 'Latency of calls to the storage backend (S3 API calls) by operation and outcome',
    labelNames: ['operation', 'outcome'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 120],
    registers: [this.registry],
  });
  readonly quotaRefusals = new Counter({
    name: 'holdfast_hold_quota_refusals_total',
    help: 'Pushes refused for a quota, by where: start (already at the limit), upload (a part URL past it), charge (publish or mount past it)',
    labelNames: ['phase'] as const,
    registers: [this.registry],
  });
  readonly uploadsPurged = new Counter({
    name: 'holdfast_hold_uploads_purged_total',
    help: 'Idle uploads aborted by the janitor',
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }

  observeStorage = (operation: string, seconds: number, outcome: 'ok' | 'error'): void => {
    this.storageLatency.observe({ operation, outcome }, seconds);
  };
}
