/**
 * One budget of buffered bytes shared by every writer of a driver. A writer
 * reserves a whole part before it starts filling it, so writers that hold a
 * reservation can always finish their part and give it back: the budget can
 * run out, but it cannot deadlock while it is at least one part.
 *
 * Part buffers are pooled: a finished part's buffer is reused by the next
 * writer instead of waiting for the garbage collector, so the memory actually
 * held (in use plus pooled) stays within the limit.
 */
export class MemoryBudget {
  readonly limit: number;
  #used = 0;
  #peak = 0;
  readonly #pool: Buffer[] = [];
  #pooledBytes = 0;
  readonly #waiters: { bytes: number; resolve: () => void }[] = [];

  constructor(limit: number) {
    if (!Number.isSafeInteger(limit) || limit <= 0) throw new RangeError('memory budget must be a positive number of bytes');
    this.limit = limit;
  }

  get used(): number {
    return this.#used;
  }

  /** The most bytes ever reserved at once. */
  get peak(): number {
    return this.#peak;
  }

  /**
   * Waits until `bytes` fit, first come first served. After `timeoutMs` the
   * wait is abandoned with `BudgetTimeoutError`, so a few stalled clients
   * holding buffers cannot hang every other upload forever.
   */
  async acquire(bytes: number, timeoutMs?: number): Promise<void> {
    if (bytes > this.limit) throw new RangeError(`cannot reserve ${bytes} bytes from a budget of ${this.limit}`);
    if (this.#waiters.length === 0 && this.#used + bytes <= this.limit) {
      this.#take(bytes);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter = { bytes, resolve: () => (clearTimeout(timer), resolve()) };
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              const index = this.#waiters.indexOf(waiter);
              if (index === -1) return;
              this.#waiters.splice(index, 1);
              reject(new BudgetTimeoutError(bytes, timeoutMs));
              this.release(0);
            }, timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /** Reserves `bytes` for memory held outside the pool, only if they fit now. */
  tryAcquire(bytes: number): boolean {
    if (this.#waiters.length > 0 || this.#used + bytes > this.limit) return false;
    this.#take(bytes);
    this.#trimPool(this.limit - this.#used);
    return true;
  }

  /** Reserves `size` bytes and hands out a buffer of that size, reusing a pooled one when it can. */
  async allocate(size: number, timeoutMs?: number): Promise<Buffer> {
    await this.acquire(size, timeoutMs);
    const index = this.#pool.findIndex((buffer) => buffer.length === size);
    if (index !== -1) {
      this.#pooledBytes -= size;
      return this.#pool.splice(index, 1)[0] as Buffer;
    }
    this.#trimPool(this.limit - this.#used);
    return Buffer.allocUnsafe(size);
  }

  /** Returns a buffer from `allocate` to the pool and releases its reservation. */
  recycle(buffer: Buffer): void {
    this.#pool.push(buffer);
    this.#pooledBytes += buffer.length;
    this.release(buffer.length);
  }

  release(bytes: number): void {
    this.#used = Math.max(0, this.#used - bytes);
    while (this.#waiters.length > 0) {
      const next = this.#waiters[0] as { bytes: number; resolve: () => void };
      if (this.#used + next.bytes > this.limit) break;
      this.#waiters.shift();
      this.#take(next.bytes);
      next.resolve();
    }
  }

  /** Drops pooled buffers until at most `room` bytes stay pooled. */
  #trimPool(room: number): void {
    while (this.#pooledBytes > Math.max(0, room) && this.#pool.length > 0) {
      this.#pooledBytes -= (this.#pool.shift() as Buffer).length;
    }
  }

  #take(bytes: number): void {
    this.#used += bytes;
    if (this.#used > this.#peak) this.#peak = this.#used;
  }
}

export class BudgetTimeoutError extends Error {
  readonly code = 'UNAVAILABLE';

  constructor(bytes: number, timeoutMs: number) {
    super(`waited ${timeoutMs} ms for ${bytes} bytes of the memory budget; too many uploads are buffering at once`);
    this.name = 'BudgetTimeoutError';
  }
}
