/**
 * One budget of buffered bytes shared by every writer of a driver. A writer
 * reserves a whole part before it starts filling it, so writers that hold a
 * reservation can always finish their part and give it back: the budget can
 * run out, but it cannot deadlock while it is at least one part.
 *
 * Each tenant (a DID) may hold at most `tenantShare` bytes. A request over
 * its tenant's share waits only for that tenant's own buffers; it never
 * stands in line in front of other tenants, so one tenant's stalled requests
 * cannot starve the rest.
 *
 * Part buffers are pooled: a finished part's buffer is reused by the next
 * writer instead of waiting for the garbage collector, so the memory actually
 * held (in use plus pooled) stays within the limit.
 */
export class MemoryBudget {
  readonly limit: number;
  readonly tenantShare: number;
  #used = 0;
  /** Bytes held by idle tails (`tryAcquire`), at most a quarter of the limit. */
  #idle = 0;
  #peak = 0;
  readonly #byTenant = new Map<string, number>();
  readonly #pool: Buffer[] = [];
  #pooledBytes = 0;
  readonly #waiters: Waiter[] = [];

  /** `tenantShare` defaults to the whole budget (no per-tenant limit). */
  constructor(limit: number, tenantShare = limit) {
    if (!Number.isSafeInteger(limit) || limit <= 0) throw new RangeError('memory budget must be a positive number of bytes');
    if (!Number.isSafeInteger(tenantShare) || tenantShare <= 0) throw new RangeError('a tenant share must be a positive number of bytes');
    this.limit = limit;
    this.tenantShare = Math.min(tenantShare, limit);
  }

  get used(): number {
    return this.#used;
  }

  /** The most bytes ever reserved at once. */
  get peak(): number {
    return this.#peak;
  }

  /** Bytes `tenant` holds now. */
  usedBy(tenant: string): number {
    return this.#byTenant.get(tenant) ?? 0;
  }

  /**
   * Waits until `bytes` fit, first come first served among the requests that
   * fit their tenant's share. After `timeoutMs` the wait is abandoned with
   * `BudgetTimeoutError`, so stalled clients holding buffers cannot hang
   * other uploads forever.
   */
  async acquire(bytes: number, options: AcquireOptions = {}): Promise<void> {
    if (bytes > this.limit) throw new RangeError(`cannot reserve ${bytes} bytes from a budget of ${this.limit}`);
    const tenant = options.tenant ?? '';
    if (this.#fitsNow(tenant, bytes)) {
      this.#take(tenant, bytes);
      return;
    }
    await new Promise<void>((resolve, reject) => {
      const waiter: Waiter = { tenant, bytes, resolve: () => (clearTimeout(timer), resolve()) };
      const timer =
        options.timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              const index = this.#waiters.indexOf(waiter);
              if (index === -1) return;
              this.#waiters.splice(index, 1);
              reject(new BudgetTimeoutError(bytes, options.timeoutMs as number, !this.#withinShare(tenant, bytes)));
              this.release(0);
            }, options.timeoutMs);
      this.#waiters.push(waiter);
    });
  }

  /**
   * Reserves `bytes` for an idle tail kept between requests, only if they fit
   * now, leave the tenant at most half its share, and keep all idle tails
   * within a quarter of the limit: idle memory never crowds out active
   * buffers. Give it back with `releaseIdle`.
   */
  tryAcquire(bytes: number, tenant = ''): boolean {
    if (this.#idle + bytes > this.limit / 4 || this.usedBy(tenant) + bytes > this.tenantShare / 2 || !this.#fitsNow(tenant, bytes)) return false;
    this.#idle += bytes;
    this.#take(tenant, bytes);
    this.#trimPool(this.limit - this.#used);
    return true;
  }

  /** Reserves `size` bytes and hands out a buffer of that size, reusing a pooled one when it can. */
  async allocate(size: number, options: AcquireOptions = {}): Promise<Buffer> {
    await this.acquire(size, options);
    const index = this.#pool.findIndex((buffer) => buffer.length === size);
    if (index !== -1) {
      this.#pooledBytes -= size;
      return this.#pool.splice(index, 1)[0] as Buffer;
    }
    this.#trimPool(this.limit - this.#used);
    return Buffer.allocUnsafe(size);
  }

  /** Returns a buffer from `allocate` to the pool and releases its reservation. */
  recycle(buffer: Buffer, tenant = ''): void {
    this.#pool.push(buffer);
    this.#pooledBytes += buffer.length;
    this.release(buffer.length, tenant);
  }

  releaseIdle(bytes: number, tenant = ''): void {
    this.#idle = Math.max(0, this.#idle - bytes);
    this.release(bytes, tenant);
  }

  release(bytes: number, tenant = ''): void {
    this.#used = Math.max(0, this.#used - bytes);
    const left = this.usedBy(tenant) - bytes;
    if (left > 0) this.#byTenant.set(tenant, left);
    else this.#byTenant.delete(tenant);
    // First come first served within a tenant; a tenant held back by its own share holds back no one else.
    const heldBack = new Set<string>();
    for (let index = 0; index < this.#waiters.length; ) {
      const next = this.#waiters[index] as Waiter;
      if (heldBack.has(next.tenant) || !this.#withinShare(next.tenant, next.bytes)) {
        heldBack.add(next.tenant);
        index++;
        continue;
      }
      // The first waiter within its share but not within the budget keeps its place.
      if (this.#used + next.bytes > this.limit) break;
      this.#waiters.splice(index, 1);
      this.#take(next.tenant, next.bytes);
      next.resolve();
    }
  }

  /** A reservation larger than the share is allowed to a tenant that holds nothing, so huge parts still proceed. */
  #withinShare(tenant: string, bytes: number): boolean {
    const held = this.usedBy(tenant);
    return held === 0 || held + bytes <= this.tenantShare;
  }

  #fitsNow(tenant: string, bytes: number): boolean {
    if (!this.#withinShare(tenant, bytes) || this.#used + bytes > this.limit) return false;
    // No overtaking a waiter of the same tenant, nor anyone waiting only for the budget.
    return !this.#waiters.some((waiter) => waiter.tenant === tenant || this.#withinShare(waiter.tenant, waiter.bytes));
  }

  /** Drops pooled buffers until at most `room` bytes stay pooled. */
  #trimPool(room: number): void {
    while (this.#pooledBytes > Math.max(0, room) && this.#pool.length > 0) {
      this.#pooledBytes -= (this.#pool.shift() as Buffer).length;
    }
  }

  #take(tenant: string, bytes: number): void {
    this.#used += bytes;
    this.#byTenant.set(tenant, this.usedBy(tenant) + bytes);
    if (this.#used > this.#peak) this.#peak = this.#used;
  }
}

export interface AcquireOptions {
  /** Whose share the bytes count against (the DID). */
  tenant?: string;
  timeoutMs?: number;
}

interface Waiter {
  tenant: string;
  bytes: number;
  resolve: () => void;
}

/** A write waited too long for buffer memory: the caller should answer 429 and let the client retry. */
export class BudgetTimeoutError extends Error {
  /** True when the tenant's own share was the limit, not the whole budget. */
  readonly overShare: boolean;

  constructor(bytes: number, timeoutMs: number, overShare: boolean) {
    super(
      overShare
        ? `waited ${timeoutMs} ms for ${bytes} bytes of buffer memory: this account's uploads already hold their share; retry when they finish`
        : `waited ${timeoutMs} ms for ${bytes} bytes of buffer memory: too many uploads are buffering at once; retry later`,
    );
    this.name = 'BudgetTimeoutError';
    this.overShare = overShare;
  }
}
