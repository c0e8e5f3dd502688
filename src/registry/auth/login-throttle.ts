import { createHash } from 'node:crypto';
import { isIPv6 } from 'node:net';
import { LRUCache } from 'lru-cache';
import { KeyedCounter } from '../../core/keyed-counter.ts';

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
 * window, and password checks in progress per address. An address a user
 * has signed in from lately is exempt from that user's limit, so failures
 * elsewhere never lock the user out of a machine they use. Keys are hashed
 * and the maps LRU bounded, so attacker-chosen names cannot grow them. IPv6
 * clients count per /64, the block one host usually gets.
 */
export class LoginThrottle {
  readonly #limits: LoginLimits;
  readonly #failures: LRUCache<string, number[]>;
  readonly #inFlight = new KeyedCounter();
  readonly #trusted = new LRUCache<string, true>({ max: 100_000, ttl: 24 * 3600_000 });
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
  begin(clientAddress: string, username: string, pending: number): (failed: boolean) => void {
    const address = addressKey(clientAddress);
    const user = `user:${digest(username)}`;
    const trusted = this.#trusted.has(`${user} ${address}`);
    this.#refuseIfOver(`address:${address}`, this.#limits.failuresPerAddress, 'too many failed logins from this address');
    if (!trusted) this.#refuseIfOver(user, this.#limits.failuresPerUser, 'too many failed logins for this user');
    if (this.#inFlight.count(address) >= this.#limits.concurrentPerAddress) throw new LoginThrottledError('too many logins in progress from this address', 1);
    if (pending >= this.#limits.maxQueued) throw new LoginThrottledError('too many logins in progress', 1);
    this.#inFlight.increment(address);
    let done = false;
    return (failed) => {
      if (done) return;
      done = true;
      this.#inFlight.decrement(address);
      if (failed) {
        this.#record(`address:${address}`, this.#limits.failuresPerAddress);
        if (!trusted) this.#record(user, this.#limits.failuresPerUser);
      } else {
        this.#trusted.set(`${user} ${address}`, true);
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

function digest(text: string): string {
  return createHash('sha256').update(text).digest('base64url');
}

/** IPv6 addresses by their /64; anything else as it is. */
function addressKey(address: string): string {
  if (!isIPv6(address) || address.startsWith('::ffff:')) return address;
  const [head = '', tail = ''] = address.split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((group) => group.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}
