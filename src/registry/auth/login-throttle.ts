import { LRUCache } from 'lru-cache';

export interface LoginLimits {
  failuresPerAddress: number;
  failuresPerUser: number;
  windowSeconds: number;
  concurrentPerAddress: number;
  maxQueued: number;
}

/** A login was refused before its password was checked; the client may try again after `retryAfterSeconds`. */
export class LoginThrottledError extends Error {
  readonly retryAfterSeconds: number;

  constructor(reason: string, retryAfterSeconds: number) {
    super(reason);
    this.name = 'LoginThrottledError';
    this.retryAfterSeconds = Math.max(1, Math.ceil(retryAfterSeconds));
  }
}

/**
 * Counts failed logins per client address and per user name in a sliding
 * window, and password checks in progress per address. Both maps are LRU
 * bounded, so a flood of distinct names cannot grow them without limit.
 */
export class LoginThrottle {
  readonly #limits: LoginLimits;
  readonly #failures: LRUCache<string, number[]>;
  readonly #inFlight = new Map<string, number>();
  readonly #now: () => number;

  constructor(limits: LoginLimits, now: () => number = Date.now) {
    this.#limits = limits;
    this.#now = now;
    this.#failures = new LRUCache({ max: 100_000, ttl: limits.windowSeconds * 1000 });
  }

  /**
   * Reserves a check for `address` and `username`, or throws
   * `LoginThrottledError`. Call the returned function once the check is done,
   * with whether it failed.
   */
  begin(address: string, username: string, pending: number): (failed: boolean) => void {
    this.#refuseIfOver(`address:${address}`, this.#limits.failuresPerAddress, 'too many failed logins from this address');
    this.#refuseIfOver(`user:${username}`, this.#limits.failuresPerUser, 'too many failed logins for this user');
    const running = this.#inFlight.get(address) ?? 0;
    if (running >= this.#limits.concurrentPerAddress) throw new LoginThrottledError('too many logins in progress from this address', 1);
    if (pending >= this.#limits.maxQueued) throw new LoginThrottledError('too many logins in progress', 1);
    this.#inFlight.set(address, running + 1);
    let done = false;
    return (failed) => {
      if (done) return;
      done = true;
      const left = (this.#inFlight.get(address) ?? 1) - 1;
      if (left > 0) this.#inFlight.set(address, left);
      else this.#inFlight.delete(address);
      if (failed) {
        this.#record(`address:${address}`, this.#limits.failuresPerAddress);
        this.#record(`user:${username}`, this.#limits.failuresPerUser);
      }
    };
  }

  #recent(key: string): number[] {
    const cutoff = this.#now() - this.#limits.windowSeconds * 1000;
    const times = (this.#failures.get(key) ?? []).filter((time) => time > cutoff);
    return times;
  }

  #refuseIfOver(key: string, limit: number, reason: string): void {
    const times = this.#recent(key);
    if (times.length < limit) return;
    const oldest = times[times.length - limit] as number;
    throw new LoginThrottledError(reason, (oldest + this.#limits.windowSeconds * 1000 - this.#now()) / 1000);
  }

  #record(key: string, limit: number): void {
    const times = this.#recent(key);
    times.push(this.#now());
    this.#failures.set(key, times.slice(-limit));
  }
}
