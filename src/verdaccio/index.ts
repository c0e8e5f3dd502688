import path from 'node:path';
import createHoldDriver, { type HoldDriver } from '../driver/index.ts';
import { KeyedMutex } from '../core/keyed-mutex.ts';
import { SqlMetadataStore } from '../registry/metadata/store.ts';
import { parsePluginConfig, type VerdaccioPluginConfig } from './config.ts';
import { HoldfastPackageStorage } from './package-storage.ts';
import type { BlobStore } from '../driver/types.ts';
import type { PackageStore } from '../registry/metadata/packages.ts';

interface VerdaccioOptions {
  config: { self_path?: string; [key: string]: unknown };
  logger: { info: (...args: unknown[]) => void; error: (...args: unknown[]) => void; warn: (...args: unknown[]) => void };
}

type Callback<T = unknown> = (err: unknown, value?: T) => void;

interface Token {
  user: string;
  key: string;
  [field: string]: unknown;
}

/**
 * Verdaccio 6 storage plugin (the legacy `IPluginStorage` contract of
 * @verdaccio/types 10). Package documents, the package list, the secret and
 * tokens live in the registry's metadata database (SQLite or Postgres), so
 * every Verdaccio sharing it sees the same registry; tarballs go through the
 * Holdfast driver: multipart through the hold, digest-verified, durable.
 */
export default class HoldfastStorage {
  readonly config: VerdaccioPluginConfig;
  readonly logger: VerdaccioOptions['logger'];
  readonly #ready: Promise<{ metadata: SqlMetadataStore; packages: PackageStore; blobs: BlobStore; driver: HoldDriver }>;
  readonly #locks = new KeyedMutex();

  constructor(pluginConfig: unknown, options: VerdaccioOptions) {
    const configDir = options.config.self_path ? path.dirname(options.config.self_path) : process.cwd();
    const config = parsePluginConfig(pluginConfig, configDir);
    this.config = config;
    this.logger = options.logger;
    this.#ready = (async () => {
      const metadata = await SqlMetadataStore.open(config.metadata);
      const driver = createHoldDriver(config.driver);
      return { metadata, packages: metadata.packages, blobs: driver.blobStore(config.did), driver };
    })();
    this.#ready.catch((err: unknown) => this.logger.error({ err }, 'holdfast storage failed to start: @{err.message}'));
  }

  async getSecret(): Promise<string | undefined> {
    return (await this.#ready).packages.getSetting('secret');
  }

  async setSecret(secret: string): Promise<void> {
    await (await this.#ready).packages.setSetting('secret', secret);
  }

  add(name: string, callback: (err: unknown) => void): void {
    this.#ready.then(({ packages }) => packages.addToList(name)).then(() => callback(null), callback);
  }

  remove(name: string, callback: (err: unknown) => void): void {
    this.#ready.then(({ packages }) => packages.removeFromList(name)).then(() => callback(null), callback);
  }

  get(callback: Callback<string[]>): void {
    this.#ready.then(({ packages }) => packages.list()).then((list) => callback(null, list.map((item) => item.name)), callback);
  }

  search(onPackage: (item: { name: string; path: string; time: number }, done: (err?: unknown) => void) => void, onEnd: (err?: unknown) => void, validateName: (name: string) => boolean): void {
    (async () => {
      const { packages } = await this.#ready;
      for (const item of await packages.list()) {
        if (!validateName(item.name.split('/').pop() ?? item.name)) continue;
        await new Promise<void>((resolve, reject) => onPackage({ name: item.name, path: item.name, time: item.updatedAt.getTime() }, (err) => (err ? reject(err) : resolve())));
      }
    })().then(() => onEnd(null), onEnd);
  }

  getPackageStorage(packageName: string): HoldfastPackageStorage {
    return new HoldfastPackageStorage(packageName, this.#ready, this.#locks);
  }

  async saveToken(token: Token): Promise<void> {
    await (await this.#ready).packages.saveToken(token.user, token.key, token);
  }

  async deleteToken(user: string, tokenKey: string): Promise<void> {
    await (await this.#ready).packages.deleteToken(user, tokenKey);
  }

  async readTokens(filter: { user: string }): Promise<unknown[]> {
    return (await this.#ready).packages.readTokens(filter.user);
  }

  /** Closes the database and the driver's connections (tests, shutdown). */
  async close(): Promise<void> {
    const { metadata, driver } = await this.#ready;
    await driver.close();
    await metadata.close();
  }
}
