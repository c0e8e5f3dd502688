import { readFile } from 'node:fs/promises';
import type { Logger } from 'pino';
import type { Registry as MetricsRegistry } from 'prom-client';
import { ConfigError } from '../../core/config.ts';
import type { Db } from '../../metadata/db.ts';
import { EventOutbox } from '../../metadata/events/outbox.ts';
import type { RegistryConfig } from '../config.ts';
import { AddressPolicy, ForbiddenAddressError, type Resolver } from './address-guard.ts';
import { EventDispatcher } from './dispatcher.ts';
import { EventMetrics } from './metrics.ts';
import { EventRecorder, resolveEndpoint, type EventEndpoint } from './recorder.ts';

export interface Events {
  recorder: EventRecorder;
  dispatcher: EventDispatcher;
  outbox: EventOutbox;
}

export interface EventsOptions {
  config: RegistryConfig['events'];
  db: Db;
  publicUrl: string;
  metrics: MetricsRegistry;
  logger: Logger;
  /** Tests: a DNS stand-in, and a clock to simulate an outage of hours. */
  resolver?: Resolver;
  now?: () => number;
}

/**
 * Events, when endpoints are configured: secrets read, every endpoint's
 * address checked once now (a name that does not resolve yet is checked at
 * each connection anyway), the recorder the metadata store reports to, and
 * the dispatcher `listen` starts.
 */
export async function openEvents(options: EventsOptions): Promise<Events | undefined> {
  const config = options.config;
  if (config.endpoints.length === 0) return undefined;
  const policy = new AddressPolicy(config.allowedNetworks, options.resolver);
  const endpoints: EventEndpoint[] = [];
  for (const [index, endpoint] of config.endpoints.entries()) {
    const secret = endpoint.secret ?? (await readFile(endpoint.secretFile as string, 'utf8')).trim();
    if (secret.length < 32) throw new ConfigError('config', [`events.endpoints.${index}.secretFile: the secret must be at least 32 characters`]);
    const resolved = resolveEndpoint(endpoint, secret);
    try {
      await policy.check(resolved.url);
    } catch (err) {
      if (err instanceof ForbiddenAddressError) throw new ConfigError('config', [`events.endpoints.${index}.url: ${err.message}`]);
      options.logger.warn({ endpoint: endpoint.name, err }, 'webhook host does not resolve now; it is checked again at each delivery');
    }
    endpoints.push(resolved);
  }
  const outbox = new EventOutbox(options.db);
  const metrics = new EventMetrics(options.metrics);
  const dispatcher = new EventDispatcher({
    outbox,
    endpoints,
    policy,
    config,
    metrics,
    logger: options.logger,
    counted: (depth) => recorder.setDepth(depth),
    ...(options.now ? { now: options.now } : {}),
  });
  const recorder = new EventRecorder({
    db: options.db,
    endpoints,
    source: config.source ?? options.publicUrl,
    maxQueued: config.maxQueued,
    maxQueuedPerNamespace: config.maxQueuedPerNamespace,
    pulls: config.pulls,
    metrics,
    logger: options.logger,
    queued: () => dispatcher.nudge(),
  });
  recorder.setDepth(await outbox.depth());
  return { recorder, dispatcher, outbox };
}
