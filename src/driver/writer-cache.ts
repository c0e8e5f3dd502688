import { LRUCache } from 'lru-cache';
import type { HoldBlobWriter } from './blob-writer.ts';

/**
 * Live writers, most recently used first: a cache in front of the hold's
 * durable upload state, never the state itself. Evicting a writer only drops
 * its idle in-memory tail; `resume` rebuilds it from the hold.
 */
export class WriterCache {
  readonly #lru: LRUCache<string, HoldBlobWriter>;

  constructor(maxWriters: number) {
    this.#lru = new LRUCache<string, HoldBlobWriter>({
      max: maxWriters,
      dispose: (writer, _id, reason) => {
        if (reason !== 'set') writer.releaseIdleMemory();
      },
    });
  }

  get(id: string): HoldBlobWriter | undefined {
    return this.#lru.get(id);
  }

  set(writer: HoldBlobWriter): void {
    const previous = this.#lru.get(writer.id);
    if (previous && previous !== writer) previous.releaseIdleMemory();
    this.#lru.set(writer.id, writer);
  }

  delete(writer: HoldBlobWriter): void {
    if (this.#lru.get(writer.id) === writer) this.#lru.delete(writer.id);
  }

  get size(): number {
    return this.#lru.size;
  }

  clear(): void {
    this.#lru.clear();
  }
}
