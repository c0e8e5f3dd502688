import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { RegistryError } from './errors.ts';
import type { Principal } from './auth/users.ts';
import type { Logger } from 'pino';
import { createLogger } from '../core/logger.ts';
import { listenForMetrics, loadMetricsSecret, mainPortAccess } from '../core/metrics-endpoint.ts';
import { OpenAuthorizer } from './auth/open.ts';
import { TokenAuthorizer } from './auth/token.ts';
import { registerAccountApi } from './auth/account-api.ts';
import type { Authorizer } from './auth/types.ts';
import { UserDirectory } from './auth/users.ts';
import type { RegistryConfig } from './config.ts';
import { buildRegistryApp } from './http/app.ts';
import type { RegistryContext, StorageDriver } from './http/context.ts';
import type { UiContext } from './ui/context.ts';
import { ImageConfigs } from './ui/image-config.ts';
import { registerUi } from './ui/routes.ts';
import { SessionKeys } from './ui/session.ts';
import { KeyedCounter } from '../core/keyed-counter.ts';
import { KeyedMutex } from '../core/keyed-mutex.ts';
import { SqlMetadataStore } from '../metadata/oci/store.ts';
import { AccountStore } from '../metadata/accounts/store.ts';
import { openDatabase } from '../metadata/db.ts';
import { RegistryMetrics } from './metrics.ts';
import { GarbageCollector } from './gc/collector.ts';
import { GcMetrics } from './gc/metrics.ts';
import { ImmutableTags } from './policies/immutable.ts';
import { Retention } from './policies/retention.ts';
import { NamespaceQuotas } from './policies/namespace-quotas.ts';
import { loadStorageDriver } from './storage.ts';
import { UploadLeases, type UploadRequestStepHook } from './upload-lease.ts';
import { openEvents, type Events } from './events/index.ts';
import type { Resolver } from './events/address-guard.ts';

export interface RegistryOptions {
  logger?: Logger;
  defaultMetrics?: boolean;
  /** An already-built driver (tests, the embedded mode); otherwise the config's module is loaded. */
  storage?: StorageDriver;
  /** Test-only: awaited at each step of an upload request. */
  onUploadStep?: UploadRequestStepHook;
  /** Test-only: while true, upload leases are not renewed, as in a process that stopped. */
  leaseRenewalsPaused?: () => boolean;
  /** Test-only: the events' DNS and clock. */
  events?: { resolver?: Resolver; now?: () => number };
}

/**
 * A running registry. `close()` stops accepting requests, lets in-flight ones
 * finish, then closes the storage driver and the metadata store. Safe to call
 * twice.
 */
export class Registry {
  readonly app: FastifyInstance;
  readonly metadata: SqlMetadataStore;
  /** Users and access tokens, in the same database. */
  readonly accounts: AccountStore;
  readonly storage: StorageDriver;
  readonly config: RegistryConfig;
  /** Set when `gc.did` is configured. */
  readonly gc: GarbageCollector | undefined;
  /** `policies.retention`; runs before each scheduled GC pass. */
  readonly retention: Retention;
  /** Set when `events.endpoints` lists any: the outbox, what writes it and what delivers it. */
  readonly events: Events | undefined;
  readonly #logger: Logger;
  readonly #authorizer: Authorizer;
  #gcTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  readonly #metrics: RegistryMetrics;
  readonly #metricsSecret: Buffer | undefined;
  #metricsServer: { address: string; close(): Promise<void> } | undefined;

  private constructor(parts: {
    app: FastifyInstance;
    metadata: SqlMetadataStore;
    accounts: AccountStore;
    storage: StorageDriver;
    config: RegistryConfig;
    gc?: GarbageCollector;
    retention: Retention;
    events?: Events;
    logger: Logger;
    authorizer: Authorizer;
    metrics: RegistryMetrics;
    metricsSecret?: Buffer;
  }) {
    this.app = parts.app;
    this.metadata = parts.metadata;
    this.accounts = parts.accounts;
    this.storage = parts.storage;
    this.config = parts.config;
    this.gc = parts.gc;
    this.retention = parts.retention;
    this.events = parts.events;
    this.#logger = parts.logger;
    this.#authorizer = parts.authorizer;
    this.#metrics = parts.metrics;
    this.#metricsSecret = parts.metricsSecret;
  }

  static async create(config: RegistryConfig, options: RegistryOptions = {}): Promise<Registry> {
    const logger = options.logger ?? createLogger();
    if (config.metadata.kind === 'sqlite') await mkdir(path.dirname(path.resolve(config.metadata.path)), { recursive: true });
    const db = await openDatabase(config.metadata);
    const publicUrl = config.publicUrl ?? `http://${config.listen.host}:${config.listen.port}`;
    const metrics = new RegistryMetrics({ defaultMetrics: options.defaultMetrics });
    const events = await openEvents({ config: config.events, db, publicUrl, metrics: metrics.registry, logger, ...options.events }).catch(async (err: unknown) => {
      await db.close();
      throw err;
    });
    const metadata = new SqlMetadataStore(db, events?.recorder.changed);
    const accounts = new AccountStore(db);
    const storage = options.storage ?? (await loadStorageDriver(config.storage.module, config.storage.options, { logger }));
    const signingKey = config.auth.mode === 'token' ? (config.auth.signingKey ?? (await readFile(config.auth.signingKeyFile as string, 'utf8'))) : undefined;
    const authorizer = await createAuthorizer(config, publicUrl, signingKey, accounts);
    const metricsSecret = await loadMetricsSecret(config.metrics);
    const immutableTags = new ImmutableTags(config.policies.immutableTags);
    const ctx: RegistryContext = {
      metadata,
      storage,
      authorizer,
      blobDelivery: config.blobs.delivery,
      metrics,
      uploadLocks: new KeyedMutex(),
      uploadLeases: new UploadLeases(metadata.uploadHolds, {
        leaseMs: config.limits.uploadLeaseSeconds * 1000,
        waitMs: config.limits.uploadWaitSeconds * 1000,
        renewalsPaused: options.leaseRenewalsPaused,
      }),
      uploadStep: options.onUploadStep ?? (async () => {}),
      limits: config.limits,
      immutableTags,
      namespaceQuotas: new NamespaceQuotas(config.policies.namespaceQuotas, metadata, (refusal, actor) => events?.recorder.quotaExceeded({ kind: 'quota.exceeded', ...refusal }, actor === undefined ? {} : { actor })),
      ...(events ? { events: events.recorder } : {}),
      openingUploads: new KeyedCounter(),
      uploadWaiters: new KeyedCounter(),
    };
    const plugins: ((app: FastifyInstance) => void)[] = [];
    const ui = config.ui.enabled
      ? uiContext(config, ctx, metadata, publicUrl, signingKey, authorizer instanceof TokenAuthorizer ? { store: accounts, changed: () => authorizer.refreshAccounts() } : undefined)
      : undefined;
    if (authorizer instanceof TokenAuthorizer) {
      plugins.push((instance) => authorizer.register(instance));
      plugins.push((instance) =>
        registerAccountApi(instance, {
          accounts,
          defaultPrivate: config.auth.mode === 'token' && config.auth.defaultVisibility === 'private',
          signedIn: (request) => accountCaller(request, authorizer, ui),
          changed: () => authorizer.refreshAccounts(),
        }),
      );
    }
    if (ui) plugins.push((instance) => registerUi(instance, ui));
    const app = buildRegistryApp(ctx, {
      logger,
      timeouts: config.limits.http,
      trustProxy: config.trustProxy,
      // With no authentication, only this machine may talk to us (docs/SECURITY.md).
      loopbackOnly: config.auth.mode === 'none',
      // Unauthenticated and loopback-only, anyone who can read /metrics can push anyway.
      metricsAccess: { access: mainPortAccess(config.metrics, metricsSecret, config.auth.mode === 'none'), secret: metricsSecret },
      plugins,
    });
    if (config.auth.mode === 'none') {
      logger.warn({ did: config.auth.did }, 'authentication is off: anyone who can reach this loopback address may push and pull');
    }
    const gc = config.gc.did
      ? new GarbageCollector({ store: metadata.gc, storage, did: config.gc.did, graceSeconds: config.gc.graceSeconds, deletingTimeoutSeconds: config.gc.deletingTimeoutSeconds, releaseConcurrency: config.gc.releaseConcurrency, metrics: new GcMetrics(metrics.registry, { perUserLabels: config.metrics.perUserLabels }), logger })
      : undefined;
    const retention = new Retention({
      rules: config.policies.retention,
      store: metadata.retention,
      listRepositories: (page) => metadata.listRepositories(page),
      immutableTags,
      metrics: metrics.registry,
      logger,
    });
    return new Registry({ app, metadata, accounts, storage, config, gc, retention, ...(events ? { events } : {}), logger, authorizer, metrics, metricsSecret });
  }

  /** The `metrics.listen` server's address once listening. */
  get metricsAddress(): string | undefined {
    return this.#metricsServer?.address;
  }

  /** Starts listening and, when configured, the periodic retention and garbage collection. */
  async listen(port = this.config.listen.port, host = this.config.listen.host): Promise<string> {
    const address = await this.app.listen({ port, host });
    if (this.config.metrics.listen && !this.#metricsServer) {
      this.#metricsServer = await listenForMetrics(this.config.metrics.listen, this.#metricsSecret, async () => ({ contentType: this.#metrics.registry.contentType, body: await this.#metrics.registry.metrics() }));
    }
    this.events?.dispatcher.start();
    if ((this.gc || this.retention.configured) && this.config.gc.intervalSeconds > 0) {
      this.#gcTimer = setInterval(() => {
        void this.#maintain();
      }, this.config.gc.intervalSeconds * 1000);
      this.#gcTimer.unref();
    }
    return address;
  }

  /** Retention first, so the GC pass right after it finds what retention unreferenced. */
  async #maintain(): Promise<void> {
    if (this.retention.configured) await this.retention.run().catch((err: unknown) => this.#logger.warn({ err }, 'retention pass failed'));
    await this.gc?.run().catch((err: unknown) => this.#logger.warn({ err }, 'gc pass failed'));
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      if (this.#gcTimer) clearInterval(this.#gcTimer);
      await this.app.close();
      await this.events?.dispatcher.close();
      await this.#metricsServer?.close();
      await this.#authorizer.close?.();
      await this.storage.close();
      await this.metadata.close();
    })();
    return this.#closing;
  }
}

/** The pages' view of the registry; sessions are keyed from the token signing key, so every instance accepts them. */
function uiContext(config: RegistryConfig, registry: RegistryContext, metadata: SqlMetadataStore, publicUrl: string, signingKey: string | undefined, accounts: UiContext['accounts']): UiContext {
  const key = signingKey === undefined ? randomBytes(32) : createHash('sha256').update('holdfast web sessions\0').update(signingKey).digest();
  const hold = (config.storage.options as { hold?: { url?: unknown; audience?: unknown } }).hold;
  return {
    registry,
    browse: metadata.browse,
    gc: metadata.gc,
    sessions: new SessionKeys({ key, ttlSeconds: Math.round(config.ui.sessionHours * 3600), secure: publicUrl.startsWith('https:') }),
    configs: new ImageConfigs(registry.storage),
    pullHost: new URL(publicUrl).host,
    loginEnabled: registry.authorizer.login !== undefined,
    holds: config.storage.module === 'hold' && typeof hold?.url === 'string' ? [{ url: withoutCredentials(hold.url), ...(typeof hold.audience === 'string' ? { did: hold.audience } : {}) }] : [],
    gcSettings: { enabled: config.gc.did !== undefined, graceSeconds: config.gc.graceSeconds, intervalSeconds: config.gc.intervalSeconds },
    ...(accounts ? { accounts } : {}),
    defaultPrivate: config.auth.mode === 'token' && config.auth.defaultVisibility === 'private',
  };
}

/** The account API's caller: Basic credentials, or a web session whose page sent its CSRF token. */
async function accountCaller(request: FastifyRequest, authorizer: TokenAuthorizer, ui: UiContext | undefined): Promise<Principal> {
  if (!request.headers.authorization && ui) {
    const username = ui.sessions.apiCaller(request);
    if (username === false) throw new RegistryError('DENIED', "a page's request needs its X-CSRF-Token and this site's origin");
    const user = username === undefined ? undefined : authorizer.viewer(username);
    if (user?.signedIn && user.username) return { username: user.username, did: user.did, ...(user.handle === undefined ? {} : { handle: user.handle }) };
  }
  return authorizer.signedIn(request);
}

/** A URL to show: without a user name or password in it. */
function withoutCredentials(url: string): string {
  try {
    const parsed = new URL(url);
    parsed.username = '';
    parsed.password = '';
    return parsed.toString().replace(/\/$/, '');
  } catch {
    return '(not a URL)';
  }
}

async function createAuthorizer(config: RegistryConfig, publicUrl: string, signingKey: string | undefined, accounts: AccountStore): Promise<Authorizer> {
  const auth = config.auth;
  if (auth.mode === 'none') return new OpenAuthorizer(auth.did);
  return new TokenAuthorizer({
    publicUrl,
    service: auth.service,
    issuer: auth.issuer,
    signingKey: signingKey as string,
    ttlSeconds: auth.tokenTtlSeconds,
    users: await UserDirectory.open(accounts, { login: auth.login, defaultPrivate: auth.defaultVisibility === 'private', ...(auth.usersFile ? { seedFile: auth.usersFile } : {}) }),
    anonymousPull: auth.anonymousPull,
    anonymousDid: auth.anonymousDid,
  });
}
