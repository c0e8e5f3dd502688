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
import { AccountConflictError, type AccountStore, type GrantRow, type TokenAction, type TokenRow, type UserRow, type VisibilityRow } from '../../metadata/accounts/store.ts';
import { anyOf, type Matcher } from '../policies/glob.ts';
import { parseAccessToken, secretMatches } from './access-tokens.ts';
import { RepositoryAccess } from './access.ts';

const MAX_USERNAME_LENGTH = 128;
/** bcrypt reads 72 bytes at most; a longer "password" only costs us the copy. */
const MAX_PASSWORD_LENGTH = 1024;

export interface User {
  username: string;
  did: string;
  /** Repositories under `<handle>/` belong to this user; a robot account has none. */
  handle?: string;
}

export const userSchema = z
  .object({
    username: z
      .string()
      .min(1)
      .max(MAX_USERNAME_LENGTH)
      .refine((name) => ![...name].some((c) => c <= ' ' || c === ':' || c === '+' || c === '\u007f'), 'has no spaces, colons, plus signs or control characters (Basic auth splits at the first colon; robot accounts are owner+name)')
      .describe('The name to log in with.'),
    passwordHash: z.string().regex(/^\$2[aby]\$\d{2}\$.{53}$/, 'must be a bcrypt hash').describe('A bcrypt hash of the password (`holdfast hash-password`).'),
    did: didSchema.describe('The DID the user acts as at the hold.'),
    handle: z
      .string()
      .max(MAX_USERNAME_LENGTH)
      .regex(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/, 'must be a lower-case repository name component')
      .describe("Repositories under `<handle>/` are the user's to push to."),
  })
  .strict();

export const usersFileSchema = z
  .object({
    users: z.array(userSchema).describe('One entry per user.'),
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

/** A user, and the token they signed in with, if they used one: what the token allows is all they may do. */
export interface Principal extends User {
  token?: { id: string; repositories: Matcher; actions: ReadonlySet<TokenAction>; expiresAt: number };
}

export interface DirectoryOptions {
  login?: LoginOptions;
  /** users.yaml: brought into the database at start; its users are managed there. */
  seedFile?: string;
  /** How often to look for changes other processes made (`holdfast user`, other instances). */
  refreshMs?: number;
  /** `auth.defaultVisibility: private`: repositories no row makes public are private. */
  defaultPrivate?: boolean;
}

const DEFAULT_REFRESH_MS = 1000;
/** How often one token's last use is written, at most. */
const TOKEN_TOUCH_MS = 60_000;

/**
 * The registry's users, from the metadata database (`holdfast user`, and
 * users.yaml as a seed), as a snapshot every instance refreshes when the
 * accounts' version row changes: a change reaches every instance within
 * `refreshMs`, and with it every cache here is dropped.
 *
 * A password check runs bcrypt on a worker thread, behind a throttle of
 * failed logins per client address and per user name and a bound on checks
 * in progress. An unknown user name is compared against a dummy hash of the
 * same cost, so the answer takes as long as for a real user. Successful
 * checks are cached briefly by a hash of the credentials, so Basic auth on
 * every request does not pay bcrypt's cost each time, and a user whose name
 * is being attacked still gets in with a password that already worked.
 * Access tokens skip bcrypt: their secrets are random, so a SHA-256 lookup
 * by id is as safe and far cheaper.
 */
export class UserDirectory {
  readonly #store: AccountStore | undefined;
  #users = new Map<string, UserRow>();
  #handles = new Map<string, User>();
  /** Tokens revoked lately: registry tokens minted from them die at once, not when they expire. */
  #revoked = new Set<string>();
  #version = '';
  #access: RepositoryAccess;
  readonly #defaultPrivate: boolean;
  readonly #verified = new LRUCache<string, Principal>({ max: 1000, ttl: 60_000, updateAgeOnGet: true });
  readonly #checking = new Map<string, Promise<Principal | undefined>>();
  readonly #touched = new LRUCache<string, number>({ max: 10_000 });
  readonly #tokenRows = new LRUCache<string, CachedToken>({ max: 10_000 });
  #dummyHash = '';
  readonly #pool: PasswordPool;
  readonly #throttle: LoginThrottle;
  #timer: NodeJS.Timeout | undefined;
  /** Reloads run one after another; each starts after the one before it ended. */
  #reloads: Promise<void> = Promise.resolve();
  #pendingReloads = 0;
  /** When the accounts were last read; see `stale`. */
  #freshAt = 0;
  readonly #refreshMs: number;

  private constructor(store: AccountStore | undefined, options: LoginOptions, defaultPrivate = false, refreshMs = DEFAULT_REFRESH_MS) {
    this.#store = store;
    this.#refreshMs = refreshMs;
    this.#defaultPrivate = defaultPrivate;
    this.#access = new RepositoryAccess(defaultPrivate);
    this.#pool = new PasswordPool(options.threads);
    this.#pool.warm();
    this.#throttle = new LoginThrottle(options);
  }

  /** The users in `store`, after bringing the seed file's users into it. */
  static async open(store: AccountStore, options: DirectoryOptions = {}): Promise<UserDirectory> {
    if (options.seedFile !== undefined) {
      const seed = await readUsersFile(options.seedFile);
      try {
        await store.syncFileUsers(seed);
      } catch (err) {
        if (err instanceof AccountConflictError) throw new ConfigError(options.seedFile, [err.message]);
        throw err;
      }
    }
    const directory = new UserDirectory(store, options.login ?? DEFAULT_LOGIN_OPTIONS, options.defaultPrivate, options.refreshMs);
    await directory.refresh();
    directory.#timer = setInterval(() => {
      // A reload still waiting on the database: the next tick tries again, rather than queueing one per second.
      if (directory.#pendingReloads === 0) directory.refresh().catch(() => {});
    }, directory.#refreshMs);
    directory.#timer.unref();
    return directory;
  }

  /** Users fixed in memory (tests, tools): no database, so no tokens. */
  static fromList(users: SeedUser[], options: LoginOptions = DEFAULT_LOGIN_OPTIONS): UserDirectory {
    const directory = new UserDirectory(undefined, options);
    const now = new Date().toISOString();
    directory.#install(users.map((user) => ({ ...user, disabled: false, source: 'file' as const, createdAt: now, updatedAt: now })), [], [], []);
    return directory;
  }

  /**
   * Rereads the accounts if they changed since the last look (every
   * `refreshMs` on its own). The read starts after this call, so a caller
   * that just changed them sees its change applied when this resolves.
   */
  refresh(): Promise<void> {
    this.#pendingReloads++;
    const run = this.#reloads
      .catch(() => {})
      .then(() => this.#reload())
      .finally(() => {
        this.#pendingReloads--;
      });
    this.#reloads = run;
    return run;
  }

  /**
   * Whether the accounts could not be read for ten refresh periods: a
   * disabled user or a revoked token might still pass on what this instance
   * last read, so the authorizer refuses to decide (503) until it reads again.
   */
  get stale(): boolean {
    return this.#store !== undefined && Date.now() - this.#freshAt > 10 * this.#refreshMs;
  }

  async #reload(): Promise<void> {
    const store = this.#store;
    if (!store) return;
    const version = await store.version();
    if (version === this.#version && this.#dummyHash) {
      this.#freshAt = Date.now();
      return;
    }
    const [users, revoked, visibility, grants] = await Promise.all([store.users(), store.revokedSince(new Date(Date.now() - REVOKED_MEMORY_MS)), store.visibility(), store.grants()]);
    this.#install(users, revoked, visibility, grants);
    this.#version = version;
    this.#freshAt = Date.now();
  }

  #install(users: readonly UserRow[], revoked: readonly string[], visibility: readonly VisibilityRow[], grants: readonly GrantRow[]): void {
    this.#access = new RepositoryAccess(this.#defaultPrivate, visibility, grants);
    const live = new Set(users.filter((user) => !user.disabled).map((user) => user.username));
    const dids = new Map(users.map((user) => [user.username, user.did]));
    // A robot account lives while its owner does, and acts as its owner's DID as it is now, not as it was when it was made.
    const enabled = users
      .filter((user) => live.has(user.username) && (user.owner === undefined || live.has(user.owner)))
      .map((user) => (user.owner === undefined ? user : { ...user, did: dids.get(user.owner) ?? user.did }));
    this.#users = new Map(enabled.map((user) => [user.username, user]));
    this.#handles = new Map(enabled.flatMap((user) => (user.handle === undefined ? [] : [[user.handle, publicUser(user)] as const])));
    this.#revoked = new Set(revoked);
    this.#verified.clear();
    this.#tokenRows.clear();
    const cost = costOf(enabled.filter((user) => user.owner === undefined));
    if (!this.#dummyHash || Number(this.#dummyHash.slice(4, 6)) !== cost) this.#dummyHash = bcrypt.hashSync(randomBytes(16).toString('hex'), cost);
  }

  /**
   * The user, or undefined when the name or password is wrong. The password
   * may be one of the user's access tokens. Throws `LoginThrottledError`
   * when `address` or `username` failed too often lately, or too many
   * checks are in progress.
   */
  async verify(username: string, password: string, address: string): Promise<Principal | undefined> {
    // No user has a longer name (the file's schema): answer as for a wrong password, without the work.
    if (username.length > MAX_USERNAME_LENGTH || password.length > MAX_PASSWORD_LENGTH) return undefined;
    const key = createHash('sha256').update(`${username}\0${password}`).digest('hex');
    const cached = this.#verified.get(key);
    if (cached && !(cached.token && cached.token.expiresAt <= Date.now())) return cached;
    // The same credentials sent on several connections at once share one check.
    const running = this.#checking.get(key);
    if (running) return running;
    const check = this.#check(key, username, password, address).finally(() => this.#checking.delete(key));
    this.#checking.set(key, check);
    return check;
  }

  async #check(key: string, username: string, password: string, address: string): Promise<Principal | undefined> {
    const version = this.#version;
    const token = parseAccessToken(password);
    const done = this.#throttle.begin(address, username, token ? 0 : this.#pool.pending);
    let principal: Principal | undefined;
    try {
      principal = token ? await this.#checkToken(username, token) : await this.#checkPassword(username, password);
    } finally {
      done(principal === undefined);
    }
    // A check that began before the accounts changed proves nothing about them now.
    if (principal && version === this.#version) this.#verified.set(key, principal);
    return principal;
  }

  async #checkPassword(username: string, password: string): Promise<Principal | undefined> {
    // A robot account has no password: it is compared, and refused, as an unknown name is.
    const user = this.#users.get(username);
    const person = user?.owner === undefined ? user : undefined;
    const ok = await this.#pool.compare(password, person?.passwordHash ?? this.#dummyHash);
    return ok && person ? publicUser(person) : undefined;
  }

  async #checkToken(username: string, presented: { id: string; secretHash: Buffer }): Promise<Principal | undefined> {
    const cached = await this.#tokenRow(presented.id);
    if (!cached || !secretMatches(presented.secretHash, cached.row.secretHash)) return undefined;
    const principal = this.#tokenHolder(username, cached);
    if (principal) this.#touch(cached.row.id);
    return principal;
  }

  /**
   * Token rows never change but for revocation, which bumps the version and
   * so empties this cache. Each is kept with its scope ready to check, so a
   * request with a registry token minted from it compiles nothing.
   */
  async #tokenRow(id: string): Promise<CachedToken | undefined> {
    let cached = this.#tokenRows.get(id);
    if (!cached && this.#store) {
      const row = await this.#store.token(id);
      if (row) {
        cached = { row, scope: { id: row.id, repositories: anyOf(row.repositories), actions: new Set(row.actions), expiresAt: Date.parse(row.expiresAt) } };
        this.#tokenRows.set(id, cached);
      }
    }
    return cached;
  }

  /** Who a token acts as, while it is live and its owner is `username` and enabled. */
  #tokenHolder(username: string, { row, scope }: CachedToken): Principal | undefined {
    const user = this.#users.get(row.owner);
    if (!user || row.owner !== username || row.revokedAt || this.#revoked.has(row.id) || scope.expiresAt <= Date.now()) return undefined;
    return { ...publicUser(user), token: scope };
  }

  /** Records a token's use, at most once a minute per token and process. */
  #touch(id: string): void {
    const now = Date.now();
    if (now - (this.#touched.get(id) ?? 0) < TOKEN_TOUCH_MS) return;
    this.#touched.set(id, now);
    this.#store?.touchToken(id, new Date(now)).catch(() => this.#touched.delete(id));
  }

  /**
   * Who a registry token minted from access token `tokenId` acts as now:
   * undefined once the token is revoked or expired, or its user is gone or
   * disabled.
   */
  async tokenPrincipal(username: string, tokenId: string): Promise<Principal | undefined> {
    if (this.#revoked.has(tokenId)) return undefined;
    const cached = await this.#tokenRow(tokenId);
    return cached ? this.#tokenHolder(username, cached) : undefined;
  }

  /** Visibility and grants, as of the last refresh. */
  get access(): RepositoryAccess {
    return this.#access;
  }

  byUsername(username: string): User | undefined {
    const user = this.#users.get(username);
    return user ? publicUser(user) : undefined;
  }

  /** The user whose namespace `handle` is. */
  byHandle(handle: string): User | undefined {
    const user = this.#handles.get(handle);
    return user ? { ...user } : undefined;
  }

  close(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    return this.#pool.close();
  }
}

interface CachedToken {
  row: TokenRow;
  scope: NonNullable<Principal['token']>;
}

/** Revoked token ids kept in memory: longer than any registry token lives (`tokenTtlSeconds` is at most an hour). */
const REVOKED_MEMORY_MS = 2 * 3600_000;

/** A user as the users file gives one. */
export type SeedUser = z.output<typeof userSchema>;

function publicUser(user: User): User {
  return { username: user.username, did: user.did, ...(user.handle === undefined ? {} : { handle: user.handle }) };
}

export async function readUsersFile(file: string): Promise<SeedUser[]> {
  const parsed = usersFileSchema.safeParse(parseYaml(await readFile(file, 'utf8')) ?? { users: [] });
  if (!parsed.success) throw ConfigError.fromZod(file, parsed.error.issues);
  return parsed.data.users;
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
