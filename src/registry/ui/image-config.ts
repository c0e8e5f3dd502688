import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import type { StorageDriver } from '../http/context.ts';

/** The parts of an image config the manifest page shows. */
export interface ImageConfigView {
  os?: string;
  architecture?: string;
  variant?: string;
  created?: string;
  author?: string;
  user?: string;
  workingDir?: string;
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  labels?: [string, string][];
  exposedPorts?: string[];
  history?: { created?: string; createdBy?: string; comment?: string; emptyLayer: boolean }[];
}

export type ConfigOutcome = { config: ImageConfigView } | { unavailable: string };

/** Configs larger than this are not fetched for display (the manifest limit, 4 MiB). */
export const MAX_CONFIG_BYTES = 4 * 1024 * 1024;
const CONFIG_MEDIA_TYPES = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/**
 * Reads image configs from storage for the manifest page: at most
 * `MAX_CONFIG_BYTES`, hashed against their digest before a byte is believed,
 * and kept (parsed, by digest: content-addressed, so never stale) in an LRU
 * bounded by count and by size.
 */
export class ImageConfigs {
  /** Reads from storage at once, across every viewer: with `MAX_CONFIG_BYTES`, what page views can hold in memory. */
  static readonly MAX_READS = 4;
  readonly #storage: StorageDriver;
  readonly #cache = new LRUCache<string, ImageConfigView>({ max: 256, maxSize: 32 * 1024 * 1024, sizeCalculation: (view) => Math.max(1, JSON.stringify(view).length) });
  /** Configs that could not be shown, so a pushed 4 MiB of garbage is read once, not on every view. */
  readonly #failed = new LRUCache<string, string>({ max: 4096 });
  /** Reads under way, by digest: viewers of one config share one read. */
  readonly #reading = new Map<string, Promise<ConfigOutcome>>();

  constructor(storage: StorageDriver) {
    this.#storage = storage;
  }

  async read(did: string, descriptor: { digest: string; size: number; mediaType: string }): Promise<ConfigOutcome> {
    if (!CONFIG_MEDIA_TYPES.has(descriptor.mediaType)) return { unavailable: `the config is ${descriptor.mediaType}, not an image config` };
    if (descriptor.size > MAX_CONFIG_BYTES) return { unavailable: `the config is ${descriptor.size} bytes, more than the ${MAX_CONFIG_BYTES} this page reads` };
    const cached = this.#cache.get(descriptor.digest);
    if (cached) return { config: cached };
    const failed = this.#failed.get(descriptor.digest);
    if (failed) return { unavailable: failed };
    const running = this.#reading.get(descriptor.digest);
    if (running) return running;
    if (this.#reading.size >= ImageConfigs.MAX_READS) return { unavailable: 'the registry is reading other configs right now; reload the page in a moment' };
    const reading = this.#load(did, descriptor.digest).finally(() => this.#reading.delete(descriptor.digest));
    this.#reading.set(descriptor.digest, reading);
    return reading;
  }

  async #load(did: string, digest: string): Promise<ConfigOutcome> {
    const [algorithm, hex] = digest.split(':');
    if (algorithm !== 'sha256' && algorithm !== 'sha512') return { unavailable: `unsupported digest ${digest}` };
    let body: Buffer;
    try {
      body = await this.#fetch(did, digest);
    } catch {
      // Storage's own words may name its hosts; a reload tries again.
      return { unavailable: 'the config could not be read from storage just now' };
    }
    if (createHash(algorithm).update(body).digest('hex') !== hex) return { unavailable: 'the stored config does not hash to its digest' };
    let parsed: unknown;
    try {
      parsed = JSON.parse(body.toString('utf8'));
    } catch {
      this.#failed.set(digest, 'the config is not JSON');
      return { unavailable: 'the config is not JSON' };
    }
    const view = toView(parsed);
    this.#cache.set(digest, view);
    return { config: view };
  }

  async #fetch(did: string, digest: string): Promise<Buffer> {
    const stream = await this.#storage.blobStore(did).open(digest);
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of stream) {
      size += (chunk as Buffer).length;
      if (size > MAX_CONFIG_BYTES) {
        stream.destroy();
        throw new Error('larger than its descriptor says');
      }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }
}

/** Entries kept of each list (history, env, labels, ports): what a page shows, and a bound on what the cache holds. */
const MAX_ENTRIES = 500;

function toView(parsed: unknown): ImageConfigView {
  const root = record(parsed);
  const config = record(root.config);
  const view: ImageConfigView = {};
  assignString(view, 'os', root.os);
  assignString(view, 'architecture', root.architecture);
  assignString(view, 'variant', root.variant);
  assignString(view, 'created', root.created);
  assignString(view, 'author', root.author);
  assignString(view, 'user', config.User);
  assignString(view, 'workingDir', config.WorkingDir);
  const entrypoint = strings(config.Entrypoint);
  if (entrypoint) view.entrypoint = entrypoint;
  const cmd = strings(config.Cmd);
  if (cmd) view.cmd = cmd;
  const env = strings(config.Env);
  if (env) view.env = env;
  const labels = Object.entries(record(config.Labels))
    .filter((entry): entry is [string, string] => typeof entry[1] === 'string')
    .slice(0, MAX_ENTRIES);
  if (labels.length > 0) view.labels = labels.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const ports = Object.keys(record(config.ExposedPorts)).slice(0, MAX_ENTRIES);
  if (ports.length > 0) view.exposedPorts = ports;
  if (Array.isArray(root.history)) {
    view.history = root.history.slice(0, MAX_ENTRIES).map((entry) => {
      const line = record(entry);
      return {
        ...(typeof line.created === 'string' ? { created: line.created } : {}),
        ...(typeof line.created_by === 'string' ? { createdBy: line.created_by } : {}),
        ...(typeof line.comment === 'string' ? { comment: line.comment } : {}),
        emptyLayer: line.empty_layer === true,
      };
    });
  }
  return view;
}

function record(value: unknown): Record<string, unknown> {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
}

function strings(value: unknown): string[] | undefined {
  return Array.isArray(value) ? value.slice(0, MAX_ENTRIES).filter((item): item is string => typeof item === 'string') : undefined;
}

function assignString<K extends 'os' | 'architecture' | 'variant' | 'created' | 'author' | 'user' | 'workingDir'>(view: ImageConfigView, key: K, value: unknown): void {
  if (typeof value === 'string' && value !== '') view[key] = value;
}
