import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { LRUCache } from 'lru-cache';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { didSchema } from '../../core/did.ts';
import { ConfigError } from '../../core/config.ts';
import { LoginThrottle, type LoginLimits } from './login-throttle.ts';
import { PasswordPool } from './password-pool.ts';

const MAX_USERNAME_LENGTH = 128;
/** bcrypt reads 72 bytes at most; a longer "password" only costs us the copy. */
const MAX_PASSWORD_LENGTH = 1024;

export interface User {
  username: string;
  did: string;
  /** Repositories under `<handle>/` belong to this user. */
  handle: string;
}

export const usersFileSchema = z
  .object({
    users: z.array(
      z
        .object({
          username: z.string().min(1).max(MAX_USERNAME_LENGTH).describe('The name to log in with.'),
          passwordHash: z.string().regex(/^\$2[aby]\$\d{2}\$.{53}$/, 'must be a bcrypt hash').describe('A bcrypt hash of the password (`holdfast hash-password`).'),
          did: didSchema.describe('The DID the user acts as at the hold.'),
          handle: z
            .string()
            .regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, 'must be a lower-case repository name component')
            .describe('Repositories under `<handle>/` are the user\'s to push to.'),
        })
        .strict(),
    ).describe('One entry per user.'),
  })
  .strict()
  .superRefine((file, context) => {
    // Two users with one handle would both own its namespace.
    for (const key of ['username', 'handle'] as const) {
      const seen = new Map<string, number>();
      file.users.forEach((user, index) => {
        const first = seen.get(user[key]);
        if (first === undefined) seen.set(user[key], index);
        else context.addIssue({ code: 'custom', path: ['users', index, key], message: `${user[key]} is already the ${key} of users.${first}; each user needs their own` });
      });
    }
  });

export interface LoginOptions extends LoginLimits {
  /** Threads that run bcrypt. */
  threads: number;
}

export const DEFAULT_LOGIN_OPTIONS: LoginOptions = Object.freeze({
  failuresPerAddress: 10,
  failuresPerUser: 10,
  windowSeconds: 300,
  concurrentPerAddress: 8,
  maxQueued: 64,
  threads: 1,
});

/**
 * Users from a credentials file (bcrypt hashes).
 *
 * A password check runs bcrypt on a worker thread, behind a throttle of
 * failed logins per client address and per user name and a bound on checks
 * in progress. An unknown user name is compared against a dummy hash of the
 * same cost, so the answer takes as long as for a real user. Successful
 * checks are cached briefly by a hash of the credentials, so Basic auth on
 * every request does not pay bcrypt's cost each time, and a user whose name
 * is being attacked still gets in with a password that already worked.
 */
export class UserDirectory {
  readonly #users: Map<string, User & { passwordHash: string }>;
  readonly #handles = new Map<string, User>();
  readonly #verified = new LRUCache<string, User>({ max: 1000, ttl: 60_000, updateAgeOnGet: true });
  readonly #checking = new Map<string, Promise<User | undefined>>();
  readonly #dummyHash: string;
  readonly #pool: PasswordPool;
  readonly #throttle: LoginThrottle;

  private constructor(users: (User & { passwordHash: string })[], options: LoginOptions) {
    this.#users = new Map(users.map((user) => [user.username, user]));
    for (const user of users) this.#handles.set(user.handle, { username: user.username, did: user.did, handle: user.handle });
    this.#dummyHash = bcrypt.hashSync(randomBytes(16).toString('hex'), costOf(users));
    this.#pool = new PasswordPool(options.threads);
    this.#pool.warm();
    this.#throttle = new LoginThrottle(options);
  }

  static async load(file: string, options: LoginOptions = DEFAULT_LOGIN_OPTIONS): Promise<UserDirectory> {
    const parsed = usersFileSchema.safeParse(parseYaml(await readFile(file, 'utf8')));
    if (!parsed.success) {
      throw ConfigError.fromZod(file, parsed.error.issues);
    }
    return new UserDirectory(parsed.data.users, options);
  }

  static fromList(users: (User & { passwordHash: string })[], options: LoginOptions = DEFAULT_LOGIN_OPTIONS): UserDirectory {
    return new UserDirectory(users, options);
  }

  /**
   * The user, or undefined when the name or password is wrong. Throws
   * `LoginThrottledError` when `address` or `username` failed too often
   * lately, or too many checks are in progress.
   */
  async verify(username: string, password: string, address: string): Promise<User | undefined> {
    // No user has a longer name (the file's schema): answer as for a wrong password, without the work.
    if (username.length > MAX_USERNAME_LENGTH || password.length > MAX_PASSWORD_LENGTH) return undefined;
    const key = createHash('sha256').update(`${username}\0${password}`).digest('hex');
    const cached = this.#verified.get(key);
    if (cached) return cached;
    // The same credentials sent on several connections at once share one check.
    const running = this.#checking.get(key);
    if (running) return running;
    const check = this.#check(key, username, password, address).finally(() => this.#checking.delete(key));
    this.#checking.set(key, check);
    return check;
  }

  async #check(key: string, username: string, password: string, address: string): Promise<User | undefined> {
    const done = this.#throttle.begin(address, username, this.#pool.pending);
    const user = this.#users.get(username);
    let ok = false;
    try {
      ok = await this.#pool.compare(password, user?.passwordHash ?? this.#dummyHash);
    } finally {
      done(!(ok && user));
    }
    if (!ok || !user) return undefined;
    const result = { username: user.username, did: user.did, handle: user.handle };
    this.#verified.set(key, result);
    return result;
  }

  byUsername(username: string): User | undefined {
    const user = this.#users.get(username);
    return user ? { username: user.username, did: user.did, handle: user.handle } : undefined;
  }

  /** The user whose namespace `handle` is. */
  byHandle(handle: string): User | undefined {
    const user = this.#handles.get(handle);
    return user ? { ...user } : undefined;
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

/**
 * The highest cost among the users' hashes (10 when there are none), for the
 * dummy hash: an unknown name then takes at least as long as any real one.
 * Users whose hashes have a lower cost answer faster; `holdfast
 * hash-password` gives every new hash the same cost.
 */
function costOf(users: readonly { passwordHash: string }[]): number {
  return users.reduce((highest, user) => Math.max(highest, Number(user.passwordHash.slice(4, 6))), users.length ? 4 : 10);
}

export function hashPassword(password: string, rounds = 10): Promise<string> {
  return bcrypt.hash(password, rounds);
}
