/**
 * Counts what is in progress per key (requests per address, uploads being
 * opened per DID). A key whose count falls to zero is forgotten, so the map
 * only ever holds keys with something in progress.
 */
export class KeyedCounter {
  readonly #counts = new Map<string, number>();

  count(key: string): number {
    return this.#counts.get(key) ?? 0;
  }

  /** Adds one for `key`; returns the count before it. */
  increment(key: string): number {
    const before = this.count(key);
    this.#counts.set(key, before + 1);
    return before;
  }

  decrement(key: string): void {
    const left = this.count(key) - 1;
    if (left > 0) this.#counts.set(key, left);
    else this.#counts.delete(key);
  }
}
