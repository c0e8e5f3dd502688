import { randomUUID } from 'node:crypto';
import type { Db, SqlValue } from '../db.ts';

/** Where a user comes from: `holdfast user add`, or the users file (which owns them: each start brings them in line with it). */
export type UserSource = 'cli' | 'file';

export interface UserRow {
  username: string;
  did: string;
  /** Unset for a robot account, which owns no namespace. */
  handle?: string;
  /** A robot account's owner: its name is `<owner>+<name>`, it has no password, and it goes with its owner. */
  owner?: string;
  passwordHash: string;
  disabled: boolean;
  source: UserSource;
  createdAt: string;
  updatedAt: string;
}

export type TokenAction = 'pull' | 'push' | 'delete';

export interface TokenRow {
  id: string;
  owner: string;
  name: string;
  /** SHA-256 (hex) of the secret part; the secret itself is never stored. */
  secretHash: string;
  /** Repository patterns (policies' glob syntax) the token may act on. */
  repositories: string[];
  actions: TokenAction[];
  createdAt: string;
  expiresAt: string;
  revokedAt?: string;
  lastUsedAt?: string;
}

/** A change the account rules refuse (a robot for a user who cannot own one, too many robots). */
export class AccountRuleError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AccountRuleError';
  }
}

/** A user name or handle that another user already has. */
export class AccountConflictError extends Error {
  readonly field: 'username' | 'handle';

  constructor(field: 'username' | 'handle', value: string, detail = '') {
    super(`${value} is already ${field === 'handle' ? 'the handle of another user' : 'a user name'}${detail}`);
    this.name = 'AccountConflictError';
    this.field = field;
  }
}

/** A namespace (`alice`: every repository under `alice/`) or one repository. */
export type AccessScopeKind = 'namespace' | 'repository';

export interface VisibilityRow {
  kind: AccessScopeKind;
  name: string;
  private: boolean;
}

export type GrantAccess = 'pull' | 'push';

export interface GrantRow {
  kind: AccessScopeKind;
  name: string;
  grantee: string;
  access: GrantAccess;
  createdAt: string;
}

const VERSION_KEY = 'accounts_version';
/** A robot's whole name must fit where any user name does (registry/auth/users.ts: 128). */
const MAX_ROBOT_NAME_LENGTH = 128;

/**
 * Users and their access tokens, in the metadata database every registry
 * instance shares. Each change bumps one version row in the same
 * transaction, so an instance that polls it sees every change.
 */
export class AccountStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /** Changes whenever a user or token does; an instance rereads the accounts when it has. */
  async version(): Promise<string> {
    return (await this.#db.get<{ value: string }>('SELECT value FROM registry_state WHERE key = ?', [VERSION_KEY]))?.value ?? '';
  }

  async users(): Promise<UserRow[]> {
    const rows = await this.#db.all<RawUser>('SELECT * FROM users ORDER BY username');
    return rows.map(userOf);
  }

  async user(username: string): Promise<UserRow | undefined> {
    const row = await this.#db.get<RawUser>('SELECT * FROM users WHERE username = ?', [username]);
    return row ? userOf(row) : undefined;
  }

  async addUser(user: { username: string; did: string; handle: string; passwordHash: string }): Promise<void> {
    await this.#db.transaction(async (tx) => {
      // Checked first for a clear answer; the unique keys still decide between two adds at once.
      await refuseTaken(tx, user.username, user.handle);
      const now = new Date().toISOString();
      await tx.run('INSERT INTO users (username, did, handle, password_hash, disabled, source, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?)', [
        user.username,
        user.did,
        user.handle,
        user.passwordHash,
        'cli',
        now,
        now,
      ]);
      await bump(tx);
    });
  }

  /**
   * Adds robot account `<owner>+<name>`: it acts as its owner's DID at the
   * hold, may do only what it is granted, and signs in only with its tokens.
   */
  async addRobot(owner: string, name: string, limit: number): Promise<UserRow> {
    return this.#db.transaction(async (tx) => {
      const user = await tx.get<RawUser>('SELECT * FROM users WHERE username = ?', [owner]);
      if (!user || user.owner !== null) throw new AccountRuleError(`no user ${owner} to own a robot account`);
      const count = await tx.get<{ count: number | string }>('SELECT COUNT(*) AS count FROM users WHERE owner = ?', [owner]);
      if (Number(count?.count ?? 0) >= limit) throw new AccountRuleError(`${owner} has ${limit} robot accounts already; delete one first`);
      const username = `${owner}+${name}`;
      if (username.length > MAX_ROBOT_NAME_LENGTH) throw new AccountRuleError(`${username} is longer than ${MAX_ROBOT_NAME_LENGTH} characters, the most a user name may have`);
      await refuseTaken(tx, username, undefined);
      const now = new Date().toISOString();
      await tx.run('INSERT INTO users (username, did, handle, password_hash, owner, disabled, source, created_at, updated_at) VALUES (?, ?, NULL, ?, ?, 0, ?, ?, ?)', [username, user.did, '', owner, 'cli', now, now]);
      await bump(tx);
      return { username, did: user.did, owner, passwordHash: '', disabled: false, source: 'cli', createdAt: now, updatedAt: now };
    });
  }

  /** A user's robot accounts. */
  async robots(owner: string): Promise<UserRow[]> {
    return (await this.#db.all<RawUser>('SELECT * FROM users WHERE owner = ? ORDER BY username', [owner])).map(userOf);
  }

  /** Deletes a robot account (of `owner`, when given), its tokens and grants with it; false when there is no such robot. */
  async removeRobot(username: string, owner?: string): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const changed = await tx.run(`DELETE FROM users WHERE username = ? AND owner IS NOT NULL${owner === undefined ? '' : ' AND owner = ?'}`, [username, ...(owner === undefined ? [] : [owner])]);
      if (changed > 0) await bump(tx);
      return changed > 0;
    });
  }

  /** Sets a user's password hash or disabled flag; false when there is no such user. */
  async updateUser(username: string, change: { passwordHash?: string; disabled?: boolean }): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const user = await tx.get<RawUser>('SELECT * FROM users WHERE username = ?', [username]);
      if (!user) return false;
      await tx.run('UPDATE users SET password_hash = ?, disabled = ?, updated_at = ? WHERE username = ?', [
        change.passwordHash ?? user.password_hash,
        change.disabled === undefined ? Number(user.disabled) : change.disabled ? 1 : 0,
        new Date().toISOString(),
        username,
      ]);
      await bump(tx);
      return true;
    });
  }

  /**
   * Brings the users the file owns in line with `users`: adds and updates
   * them, and removes those no longer in it (their tokens go with them). A
   * file user whose name or handle a `holdfast user` user has is refused.
   */
  async syncFileUsers(users: readonly { username: string; did: string; handle: string; passwordHash: string }[]): Promise<{ added: number; updated: number; removed: number }> {
    return this.#db.transaction(async (tx) => {
      const existing = new Map((await tx.all<RawUser>('SELECT * FROM users')).map((row) => [row.username, row]));
      const handles = new Map([...existing.values()].filter((row) => row.handle !== null).map((row) => [row.handle as string, row.username]));
      const now = new Date().toISOString();
      const result = { added: 0, updated: 0, removed: 0 };
      const named = new Set(users.map((user) => user.username));
      for (const row of existing.values()) {
        if (row.source !== 'file' || named.has(row.username)) continue;
        await tx.run('DELETE FROM users WHERE username = ?', [row.username]);
        if (row.handle !== null) handles.delete(row.handle);
        result.removed++;
      }
      for (const user of users) {
        const row = existing.get(user.username);
        if (row && row.source !== 'file') throw new AccountConflictError('username', user.username, ' (added with holdfast user); take it out of the users file');
        const holder = handles.get(user.handle);
        if (holder !== undefined && holder !== user.username) throw new AccountConflictError('handle', user.handle, ` (${holder}); each user needs their own`);
        if (!row) {
          await tx.run('INSERT INTO users (username, did, handle, password_hash, disabled, source, created_at, updated_at) VALUES (?, ?, ?, ?, 0, ?, ?, ?)', [
            user.username,
            user.did,
            user.handle,
            user.passwordHash,
            'file',
            now,
            now,
          ]);
          result.added++;
        } else if (row.did !== user.did || row.handle !== user.handle || row.password_hash !== user.passwordHash) {
          await tx.run('UPDATE users SET did = ?, handle = ?, password_hash = ?, updated_at = ? WHERE username = ?', [user.did, user.handle, user.passwordHash, now, user.username]);
          result.updated++;
        } else continue;
        if (row?.handle) handles.delete(row.handle);
        handles.set(user.handle, user.username);
      }
      if (result.added + result.updated + result.removed > 0) await bump(tx);
      return result;
    });
  }

  /** Stores a new token. Nothing any instance holds changes with it, so the version does not move: creating tokens costs no reload. */
  async createToken(token: Omit<TokenRow, 'revokedAt' | 'lastUsedAt'>): Promise<void> {
    await this.#db.run('INSERT INTO access_tokens (id, owner, name, secret_hash, repositories, actions, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)', [
        token.id,
        token.owner,
        token.name,
        token.secretHash,
        JSON.stringify(token.repositories),
        JSON.stringify(token.actions),
        token.createdAt,
        token.expiresAt,
      ]);
  }

  async token(id: string): Promise<TokenRow | undefined> {
    const row = await this.#db.get<RawToken>('SELECT * FROM access_tokens WHERE id = ?', [id]);
    return row ? tokenOf(row) : undefined;
  }

  /** A user's tokens (revoked and expired ones too), newest first, at most `limit`. */
  async tokens(owner: string, limit = 1000): Promise<TokenRow[]> {
    const rows = await this.#db.all<RawToken>('SELECT * FROM access_tokens WHERE owner = ? ORDER BY created_at DESC, id LIMIT ?', [owner, limit]);
    return rows.map(tokenOf);
  }

  /** How many live (unrevoked, unexpired) tokens a user has. */
  async liveTokenCount(owner: string, now = new Date()): Promise<number> {
    const row = await this.#db.get<{ count: number | string }>('SELECT COUNT(*) AS count FROM access_tokens WHERE owner = ? AND revoked_at IS NULL AND expires_at > ?', [owner, now.toISOString()]);
    return Number(row?.count ?? 0);
  }

  /** Revokes a token (of `owner`, when given); false when there is no such live token. */
  async revokeToken(id: string, owner?: string): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const changed = await tx.run(`UPDATE access_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL${owner === undefined ? '' : ' AND owner = ?'}`, [
        new Date().toISOString(),
        id,
        ...(owner === undefined ? [] : [owner]),
      ]);
      if (changed > 0) await bump(tx);
      return changed > 0;
    });
  }

  /** Ids of tokens revoked since `since`. */
  async revokedSince(since: Date): Promise<string[]> {
    return (await this.#db.all<{ id: string }>('SELECT id FROM access_tokens WHERE revoked_at > ?', [since.toISOString()])).map((row) => row.id);
  }

  /** Every visibility row, or those of the given names (a repository and its namespace, say). */
  async visibility(names?: readonly string[]): Promise<VisibilityRow[]> {
    const rows = await this.#db.all<{ kind: string; name: string; private: number | string }>(
      `SELECT kind, name, private FROM repository_visibility${names ? ` WHERE name IN (${names.map(() => '?').join(', ')})` : ''} ORDER BY kind, name`,
      names ? [...names] : [],
    );
    return rows.map((row) => ({ kind: row.kind === 'namespace' ? 'namespace' : 'repository', name: row.name, private: Number(row.private) !== 0 }));
  }

  /**
   * Sets a namespace or repository public or private; `undefined` goes back
   * to what encloses it (the namespace, then the config). A namespace holds
   * at most `limits.perNamespace` rows (its own and its repositories').
   */
  async setVisibility(kind: AccessScopeKind, name: string, isPrivate: boolean | undefined, limits: { perNamespace: number }): Promise<void> {
    await this.#db.transaction(async (tx) => {
      if (isPrivate === undefined) await tx.run('DELETE FROM repository_visibility WHERE kind = ? AND name = ?', [kind, name]);
      else {
        const { namespace, rows } = inNamespaceOf(kind, name);
        const counts = await tx.get<{ here: number | string; present: number | string }>(
          `SELECT (SELECT COUNT(*) FROM repository_visibility WHERE ${rows.sql}) AS here,
                  (SELECT COUNT(*) FROM repository_visibility WHERE kind = ? AND name = ?) AS present`,
          [...rows.params, kind, name],
        );
        if (Number(counts?.present ?? 0) === 0 && Number(counts?.here ?? 0) >= limits.perNamespace) {
          throw new AccountRuleError(`${namespace} has ${limits.perNamespace} visibility settings already; set the namespace's instead, or set some back to inherit`);
        }
        await tx.run(
          'INSERT INTO repository_visibility (kind, name, private, updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (kind, name) DO UPDATE SET private = excluded.private, updated_at = excluded.updated_at',
          [kind, name, isPrivate ? 1 : 0, new Date().toISOString()],
        );
      }
      await bump(tx);
    });
  }

  /** Every grant, or those on one namespace or repository. */
  async grants(on?: { kind: AccessScopeKind; name: string }): Promise<GrantRow[]> {
    const rows = await this.#db.all<{ kind: string; name: string; grantee: string; access: string; created_at: string }>(
      `SELECT * FROM repository_grants${on ? ' WHERE kind = ? AND name = ?' : ''} ORDER BY kind, name, grantee`,
      on ? [on.kind, on.name] : [],
    );
    return rows.map((row) => ({ kind: row.kind === 'namespace' ? 'namespace' : 'repository', name: row.name, grantee: row.grantee, access: row.access === 'push' ? 'push' : 'pull', createdAt: row.created_at }));
  }

  /**
   * Grants `access` on a namespace or repository to a user (replacing what
   * they had there); false when there is no such user. Refused past
   * `limits`: grants in one namespace, and grants one user holds (each is a
   * term of that user's catalog query).
   */
  async grant(kind: AccessScopeKind, name: string, grantee: string, access: GrantAccess, limits: { perNamespace: number; perGrantee: number }): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      if (!(await tx.get('SELECT 1 AS one FROM users WHERE username = ?', [grantee]))) return false;
      const { namespace, rows } = inNamespaceOf(kind, name);
      const counts = await tx.get<{ here: number | string; held: number | string }>(
        `SELECT (SELECT COUNT(*) FROM repository_grants WHERE ${rows.sql}) AS here, (SELECT COUNT(*) FROM repository_grants WHERE grantee = ?) AS held`,
        [...rows.params, grantee],
      );
      const exists = await tx.get('SELECT 1 AS one FROM repository_grants WHERE kind = ? AND name = ? AND grantee = ?', [kind, name, grantee]);
      if (!exists && Number(counts?.here ?? 0) >= limits.perNamespace) throw new AccountRuleError(`${namespace} has ${limits.perNamespace} grants already; grant on the namespace instead, or revoke some`);
      if (!exists && Number(counts?.held ?? 0) >= limits.perGrantee) throw new AccountRuleError(`${grantee} holds ${limits.perGrantee} grants already`);
      await tx.run(
        'INSERT INTO repository_grants (kind, name, grantee, access, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (kind, name, grantee) DO UPDATE SET access = excluded.access',
        [kind, name, grantee, access, new Date().toISOString()],
      );
      await bump(tx);
      return true;
    });
  }

  /** Takes back what a user was granted on a namespace or repository; false when there was nothing. */
  async revokeGrant(kind: AccessScopeKind, name: string, grantee: string): Promise<boolean> {
    return this.#db.transaction(async (tx) => {
      const changed = await tx.run('DELETE FROM repository_grants WHERE kind = ? AND name = ? AND grantee = ?', [kind, name, grantee]);
      if (changed > 0) await bump(tx);
      return changed > 0;
    });
  }

  /** Records a use; not a change other instances need to see, so no version bump. */
  async touchToken(id: string, at: Date): Promise<void> {
    await this.#db.run('UPDATE access_tokens SET last_used_at = ? WHERE id = ?', [at.toISOString(), id]);
  }
}

interface RawUser {
  username: string;
  did: string;
  handle: string | null;
  owner: string | null;
  password_hash: string;
  disabled: number | string;
  source: string;
  created_at: string;
  updated_at: string;
  [key: string]: unknown;
}

interface RawToken {
  id: string;
  owner: string;
  name: string;
  secret_hash: string;
  repositories: string;
  actions: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
  last_used_at: string | null;
  [key: string]: unknown;
}

function userOf(row: RawUser): UserRow {
  return {
    username: row.username,
    did: row.did,
    ...(row.handle === null ? {} : { handle: row.handle }),
    ...(row.owner === null ? {} : { owner: row.owner }),
    passwordHash: row.password_hash,
    disabled: Number(row.disabled) !== 0,
    source: row.source === 'file' ? 'file' : 'cli',
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

function tokenOf(row: RawToken): TokenRow {
  return {
    id: row.id,
    owner: row.owner,
    name: row.name,
    secretHash: row.secret_hash,
    repositories: JSON.parse(row.repositories) as string[],
    actions: JSON.parse(row.actions) as TokenAction[],
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    ...(row.revoked_at ? { revokedAt: row.revoked_at } : {}),
    ...(row.last_used_at ? { lastUsedAt: row.last_used_at } : {}),
  };
}

async function refuseTaken(tx: Db, username: string, handle: string | undefined): Promise<void> {
  if (await tx.get('SELECT 1 AS one FROM users WHERE username = ?', [username])) throw new AccountConflictError('username', username);
  if (handle === undefined) return;
  const holder = await tx.get<{ username: string }>('SELECT username FROM users WHERE handle = ?', [handle]);
  if (holder) throw new AccountConflictError('handle', handle, ` (${holder.username})`);
}

/**
 * The namespace a grant or visibility row on `name` counts against, and the
 * condition on a (kind, name) table that selects that namespace's rows: its
 * own, and those of the repositories under it.
 */
function inNamespaceOf(kind: AccessScopeKind, name: string): { namespace: string; rows: { sql: string; params: SqlValue[] } } {
  const namespace = kind === 'namespace' ? name : name.slice(0, name.indexOf('/'));
  return {
    namespace,
    rows: { sql: `((kind = 'namespace' AND name = ?) OR (kind = 'repository' AND substr(name, 1, ?) = ?))`, params: [namespace, namespace.length + 1, `${namespace}/`] },
  };
}

async function bump(tx: Db): Promise<void> {
  await tx.run('INSERT INTO registry_state (key, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at', [
    VERSION_KEY,
    randomUUID(),
    new Date().toISOString(),
  ]);
}
