import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { createLogger } from '../core/logger.ts';
import { AccessPolicy } from './auth/policy.ts';
import { ServiceTokenVerifier } from './auth/tokens.ts';
import { FsBackend } from './backends/fs.ts';
import { S3Backend } from './backends/s3.ts';
import type { StorageBackend } from './backends/types.ts';
import { trustedIssuerKeys, type HoldConfig } from './config.ts';
import { buildHoldApp } from './http/server.ts';
import { listenForMetrics, loadMetricsSecret, mainPortAccess } from '../core/metrics-endpoint.ts';
import { normalizePrefix } from './keys.ts';
import { HoldMetrics } from './metrics.ts';
import { HoldService } from './service.ts';
import type { QuotaPhase, QuotaSettings } from './quotas/quotas.ts';
import type { StepHook } from './protocol-steps.ts';
import type { JanitorBudget } from './cleanup/janitor.ts';

/** What one janitor pass did: deletions finished, idle uploads discarded, uploads it could not decide, orphaned keys deleted. */
export interface JanitorPass {
  abandoned: number;
  purged: number;
  skipped: number;
  orphans: number;
}

export interface HoldOptions {
  logger?: Logger;
  /** Base directory for relative paths in the config. */
  baseDir?: string;
  defaultMetrics?: boolean;
  /** Clock override, for janitor tests. */
  now?: () => Date;
  /** Test-only: see `HoldServiceOptions.onStep`. */
  onStep?: StepHook;
  /** See `HoldServiceOptions.janitorBudget`; the defaults suit every deployment, tests shrink it. */
  janitorBudget?: Partial<JanitorBudget>;
}

/**
 * A running hold: the HTTP app, its service and backend, and the janitor.
 * `close()` stops accepting requests, lets in-flight ones finish, stops the
 * janitor and releases the backend; it is safe to call twice.
 */
export class Hold {
  readonly app: FastifyInstance;
  readonly service: HoldService;
  readonly backend: StorageBackend;
  readonly metrics: HoldMetrics;
  readonly config: HoldConfig;
  readonly #logger: Logger;
  #janitor: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  readonly #metricsSecret: Buffer | undefined;
  #metricsServer: { address: string; close(): Promise<void> } | undefined;

  private constructor(parts: { app: FastifyInstance; service: HoldService; backend: StorageBackend; metrics: HoldMetrics; config: HoldConfig; logger: Logger; metricsSecret?: Buffer }) {
    this.app = parts.app;
    this.service = parts.service;
    this.backend = parts.backend;
    this.metrics = parts.metrics;
    this.config = parts.config;
    this.#logger = parts.logger;
    this.#metricsSecret = parts.metricsSecret;
  }

  static async create(config: HoldConfig, options: HoldOptions = {}): Promise<Hold> {
    const logger = options.logger ?? createLogger();
    const metrics = new HoldMetrics({ defaultMetrics: options.defaultMetrics });
    const publicUrl = config.publicUrl ?? `http://${config.listen.host}:${config.listen.port}`;
    const backend = createBackend(config, publicUrl, metrics);
    const storage = config.storage;
    const prefix = normalizePrefix(storage.backend === 's3' ? storage.s3.prefix : storage.fs.prefix);
    const service = new HoldService({
      backend,
      policy: new AccessPolicy({ owner: config.owner, crew: config.crew, publicRead: config.publicRead }),
      prefix,
      presignTtlSeconds: config.presignTtlSeconds,
      uploadTtlSeconds: config.uploadTtlSeconds,
      deletionLeaseSeconds: config.deletionLeaseSeconds,
      now: options.now,
      onStep: options.onStep,
      ...(options.janitorBudget ? { janitorBudget: options.janitorBudget } : {}),
      ...(config.quotas ? { quotas: quotaSettings(config), onQuotaRefusal: (phase: QuotaPhase) => metrics.quotaRefusals.inc({ phase }) } : {}),
    });
    const verifier = new ServiceTokenVerifier({
      audience: config.identity,
      issuers: await trustedIssuerKeys(config, options.baseDir),
      maxLifetimeSeconds: config.tokenMaxLifetimeSeconds,
      clockToleranceSeconds: config.tokenClockSkewSeconds,
    });
    if (!backend.capabilities.conditionalWrites) {
      logger.warn(
        { provider: storage.backend === 's3' ? storage.s3.provider : storage.backend },
        'this provider has no conditional writes: upload records and blob deletions are serialized within this hold process only; run one hold process per bucket (docs/PRESIGNED_URLS.md, "Guarantees by provider")',
      );
    }
    const metricsSecret = await loadMetricsSecret(config.metrics, options.baseDir);
    const app = buildHoldApp({
      service,
      verifier,
      metrics,
      logger,
      fsBackend: backend instanceof FsBackend ? backend : undefined,
      timeouts: config.limits.http,
      metricsAccess: { access: mainPortAccess(config.metrics, metricsSecret, false), secret: metricsSecret },
    });
    return new Hold({ app, service, backend, metrics, config, logger, metricsSecret });
  }

  /** The `metrics.listen` server's address once listening. */
  get metricsAddress(): string | undefined {
    return this.#metricsServer?.address;
  }

  /** Starts listening; resolves to the bound address. */
  async listen(port = this.config.listen.port, host = this.config.listen.host): Promise<string> {
    const address = await this.app.listen({ port, host });
    if (this.config.metrics.listen && !this.#metricsServer) {
      this.#metricsServer = await listenForMetrics(this.config.metrics.listen, this.#metricsSecret, async () => ({ contentType: this.metrics.registry.contentType, body: await this.metrics.registry.metrics() }));
    }
    this.#startJanitor();
    return address;
  }

  /**
   * One janitor pass: deletions whose hold process died, then a bounded
   * stretch of the upload directories (see `Janitor#sweepUploads`).
   */
  async runJanitor(): Promise<JanitorPass> {
    const abandoned = await this.service.janitor.finishAbandonedDeletions();
    if (abandoned > 0) this.#logger.warn({ abandoned }, 'janitor finished deletions whose hold process died');
    const { purged, skipped, orphans } = await this.service.janitor.sweepUploads();
    if (orphans > 0) this.#logger.info({ orphans }, 'janitor deleted objects written after their upload ended');
    this.metrics.uploadsPurged.inc(purged);
    if (purged > 0) this.#logger.info({ purged }, 'janitor aborted idle uploads');
    if (skipped > 0) this.#logger.warn({ skipped }, 'janitor skipped uploads it could not read; it will retry');
    return { abandoned, purged, skipped, orphans };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#janitor) clearInterval(this.#janitor);
      await this.app.close();
      await this.#metricsServer?.close();
      await this.backend.close();
    })();
    return this.#closing;
  }

  #startJanitor(): void {
    const seconds = this.config.janitorIntervalSeconds;
    if (seconds === 0 || this.#janitor) return;
    let running = false;
    this.#janitor = setInterval(() => {
      // A pass still running when the next is due (a slow bucket) is left to finish; passes never pile up.
      if (running) return;
      running = true;
      this.runJanitor()
        .catch((err: unknown) => this.#logger.warn({ err }, 'janitor pass failed'))
        .finally(() => (running = false));
    }, seconds * 1000);
    this.#janitor.unref();
  }
}

function createBackend(config: HoldConfig, publicUrl: string, metrics: HoldMetrics): StorageBackend {
  const storage = config.storage;
  if (storage.backend === 'fs') {
    return new FsBackend({ root: storage.fs.root, publicUrl, signingSecret: storage.fs.signingSecret });
  }
  return new S3Backend({ ...storage.s3, observe: metrics.observeStorage });
}

/** `quotas` and each crew member's `tier` of the config, for the service. */
export function quotaSettings(config: HoldConfig): QuotaSettings {
  const quotas = config.quotas as NonNullable<HoldConfig['quotas']>;
  return {
    hold: config.identity,
    owner: config.owner,
    tiers: quotas.tiers,
    ...(quotas.defaultTier !== undefined ? { defaultTier: quotas.defaultTier } : {}),
    crewTiers: new Map(config.crew.filter((member) => member.tier !== undefined).map((member) => [member.did, member.tier as string])),
  };
}
