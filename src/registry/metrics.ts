import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class RegistryMetrics {
  readonly registry = new Registry();
  readonly requests = new Counter({
    name: 'holdfast_registry_requests_total',
    help: 'Registry requests by route, method and status',
    labelNames: ['route', 'method', 'status'] as const,
    registers: [this.registry],
  });
  readonly bytesIn = new Counter({
    name: 'holdfast_registry_blob_bytes_in_total',
    help: 'Blob bytes received from clients',
    registers: [this.registry],
  });
  readonly uploadSeconds = new Histogram({
    name: 'holdfast_registry_upload_duration_seconds',
    help: 'Time from upload start to commit',
    buckets: [0.1, 0.5, 1, 5, 15, 60, 300, 1800, 7200],
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    if (options.defaultMetrics) collectDefaultMetrics({ register: this.registry });
  }
}
