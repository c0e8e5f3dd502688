import { Agent, type Dispatcher } from 'undici';
import { ServiceTokenSigner } from '../core/service-token.ts';
import { HoldBlobStore } from './blob-store.ts';
import type { HoldBlobWriter } from './blob-writer.ts';
import { parseDriverConfig, type DriverConfig } from './config.ts';
import { HoldClient } from './hold-client.ts';
import { MemoryBudget } from './memory-budget.ts';
import { Transport, type TransportOptions } from './transport.ts';
import type { BlobStore } from './types.ts';
import { PresignedUrlCache } from './presigned-url-cache.ts';
import { WriterCache } from './writer-cache.ts';
import type { WriterStepHook } from './writer-steps.ts';
import type { WriterContext } from './writer-context.ts';

export * from './types.ts';
export { parseDriverConfig, type DriverConfig, type DriverConfigInput } from './config.ts';

export interface DriverOptions {
  dispatcher?: Dispatcher;
  /** Observes each byte-carrying request to storage. */
  onStorageRequest?: TransportOptions['onRequest'];
  /** Test-only: awaited at each step of a write or commit (see `WRITER_STEPS`). */
  onStep?: WriterStepHook;
}

/**
 * The storage driver: one per registry process. It owns the connection pool,
 * the memory budget and the writer cache, and hands out a BlobStore per DID.
 * `close()` waits for nothing in flight to be lost: callers finish their
 * writers first; it then releases connections. Safe to call twice.
 */
export class HoldDriver {
  readonly config: DriverConfig;
  readonly budget: MemoryBudget;
  readonly #hold: HoldClient;
  readonly #transport: Transport;
  readonly #cache: WriterCache;
  readonly #urls: PresignedUrlCache | undefined;
  readonly #dispatcher: Dispatcher;
  readonly #ownsDispatcher: boolean;
  readonly #onStep: WriterStepHook | undefined;
  #closed: Promise<void> | undefined;

  constructor(config: DriverConfig, options: DriverOptions = {}) {
    this.config = config;
    this.#ownsDispatcher = options.dispatcher === undefined;
    this.#onStep = options.onStep;
    this.#dispatcher = options.dispatcher ?? new Agent({ connections: 128, keepAliveTimeout: 10_000 });
    this.budget = new MemoryBudget(config.memoryBudget, config.memoryPerDid);
    this.#cache = new WriterCache(config.maxCachedWriters);
    this.#urls = config.maxCachedUrls > 0 ? new PresignedUrlCache({ maxEntries: config.maxCachedUrls }) : undefined;
    const signer = new ServiceTokenSigner({ issuer: config.issuer, privateKey: config.privateKey, ...(config.service !== undefined ? { service: config.service } : {}) });
    this.#hold = new HoldClient({ url: config.hold.url, audience: config.hold.audience, signer, dispatcher: this.#dispatcher, retry: config.retry });
    this.#transport = new Transport({
      dispatcher: this.#dispatcher,
      retry: config.retry,
      timeoutMs: config.partTimeoutMs,
      onRequest: options.onStorageRequest,
    });
  }

  /** The blob store through which `did` reads and writes. */
  blobStore(did: string): BlobStore {
    const ctx: WriterContext = {
      did,
      hold: this.#hold,
      transport: this.#transport,
      budget: this.budget,
      maxPartsInFlight: this.config.maxPartsInFlight,
      bufferWaitMs: this.config.bufferWaitMs,
      maxPartSize: this.config.memoryBudget,
      adoptChunkSize: this.config.adoptChunkSize,
      retire: (writer: HoldBlobWriter) => this.#cache.delete(writer),
      step: this.#onStep ?? noStep,
    };
    return new HoldBlobStore(ctx, this.#cache, { partSize: this.config.partSize, equalParts: this.config.equalParts }, this.#urls);
  }

  get cachedWriters(): number {
    return this.#cache.size;
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      this.#cache.clear();
      if (this.#ownsDispatcher) await this.#dispatcher.close();
    })();
    return this.#closed;
  }
}

async function noStep(): Promise<void> {}

/** The plugin entry point a host loads by name: `(config, options) → driver`. */
export default function createHoldDriver(config: unknown, options: DriverOptions = {}): HoldDriver {
  return new HoldDriver(parseDriverConfig(config), options);
}
