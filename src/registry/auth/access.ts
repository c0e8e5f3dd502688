/**
 * Who may do what to a repository, by policy: its owner (the user whose
 * handle is its first path component) everything; users granted pull or
 * push on it or its namespace that much; everyone signed in (and anonymous
 * callers, with `anonymousPull`) pull, unless it is private. A repository
 * row overrides its namespace's, which overrides `auth.defaultVisibility`.
 */
import { AccountRuleError, type AccessScopeKind, type AccountStore, type GrantAccess, type GrantRow, type VisibilityRow } from '../../metadata/accounts/store.ts';
import type { User } from './users.ts';
import { isRepositoryName } from '../names.ts';

export type RepositoryAction = 'pull' | 'push' | 'delete';

/** Grants in one namespace, and grants one user holds: each is a term of that user's catalog query. */
export const GRANT_LIMITS = Object.freeze({ perNamespace: 256, perGrantee: 4096 });
/** Visibility rows in one namespace: every instance keeps them all in memory, and each may be a stop for a catalog walk. */
export const VISIBILITY_LIMITS = Object.freeze({ perNamespace: 4096 });

export interface AccessScope {
  kind: AccessScopeKind;
  name: string;
}

export class RepositoryAccess {
  readonly #defaultPrivate: boolean;
  readonly #anyPrivate: boolean;
  readonly #visibility = new Map<string, boolean>();
  readonly #grants = new Map<string, Map<string, GrantAccess>>();
  readonly #grantsByUser = new Map<string, { repositories: string[]; namespaces: string[] }>();
  readonly #publicStarts: string[];

  constructor(defaultPrivate: boolean, visibility: readonly VisibilityRow[] = [], grants: readonly GrantRow[] = []) {
    this.#defaultPrivate = defaultPrivate;
    for (const row of visibility) this.#visibility.set(key(row.kind, row.name), row.private);
    this.#anyPrivate = defaultPrivate || visibility.some((row) => row.private);
    this.#publicStarts = visibility
      .filter((row) => !row.private)
      .flatMap((row) => (row.kind === 'namespace' ? [row.name, `${row.name}/`] : [row.name]))
      .sort();
    for (const row of grants) {
      const scope = key(row.kind, row.name);
      let users = this.#grants.get(scope);
      if (!users) this.#grants.set(scope, (users = new Map()));
      users.set(row.grantee, row.access);
      let own = this.#grantsByUser.get(row.grantee);
      if (!own) this.#grantsByUser.set(row.grantee, (own = { repositories: [], namespaces: [] }));
      (row.kind === 'namespace' ? own.namespaces : own.repositories).push(row.name);
    }
  }

  get defaultPrivate(): boolean {
    return this.#defaultPrivate;
  }

  /** Whether anything is private at all: if not, nobody's view needs filtering. */
  get anyPrivate(): boolean {
    return this.#anyPrivate;
  }

  /**
   * Where what a row makes public starts, ascending: a repository's name, a
   * namespace's name and `<namespace>/`. A catalog walk past a private
   * stretch resumes at one of these (or at a grant).
   */
  get publicStarts(): readonly string[] {
    return this.#publicStarts;
  }

  isPrivate(repository: string): boolean {
    return this.#visibility.get(key('repository', repository)) ?? this.isNamespacePrivate(namespaceOf(repository));
  }

  /** What a repository in `namespace` is when no row names the repository itself. */
  isNamespacePrivate(namespace: string): boolean {
    return this.#visibility.get(key('namespace', namespace)) ?? this.#defaultPrivate;
  }

  /** What `user` (undefined: a caller without credentials) may do to `repository` by policy, before any token's scope. */
  rights(user: User | undefined, repository: string, anonymousPull: boolean): RepositoryAction[] {
    if (user && namespaceOf(repository) === user.handle) return ['pull', 'push', 'delete'];
    const granted = user ? this.#granted(user.username, repository) : undefined;
    if (granted === 'push') return ['pull', 'push'];
    if (granted === 'pull') return ['pull'];
    if (this.isPrivate(repository)) return [];
    return user || anonymousPull ? ['pull'] : [];
  }

  /** What a user was granted: the catalog's query shows these besides public repositories and their own. */
  grantsOf(username: string): { repositories: readonly string[]; namespaces: readonly string[] } {
    return this.#grantsByUser.get(username) ?? { repositories: [], namespaces: [] };
  }

  /** The stronger of a grant on the repository and one on its namespace. */
  #granted(username: string, repository: string): GrantAccess | undefined {
    const direct = this.#grants.get(key('repository', repository))?.get(username);
    const inherited = this.#grants.get(key('namespace', namespaceOf(repository)))?.get(username);
    return direct === 'push' || inherited === 'push' ? 'push' : (direct ?? inherited);
  }
}

/**
 * What a name given to `holdfast access` or `/auth/access` sets: `alice` is
 * the namespace (every repository under `alice/`, and one named `alice`),
 * `alice/app` that repository. Undefined for anything else.
 */
export function accessScopeOf(name: string): AccessScope | undefined {
  if (!isRepositoryName(name)) return undefined;
  return name.includes('/') ? { kind: 'repository', name } : { kind: 'namespace', name };
}

export interface AccessChange {
  visibility?: 'public' | 'private' | 'inherit';
  /** A user's new access, or null to take it back. */
  grants: Record<string, GrantAccess | null>;
}

/**
 * Applies an owner's change: grants first, so one refused (no such user,
 * a limit: `AccountRuleError`) leaves the visibility as it was.
 */
export async function applyAccessChange(accounts: AccountStore, scope: AccessScope, change: AccessChange): Promise<void> {
  for (const [user, level] of Object.entries(change.grants)) {
    if (level === null) await accounts.revokeGrant(scope.kind, scope.name, user);
    else if (!(await accounts.grant(scope.kind, scope.name, user, level, GRANT_LIMITS))) throw new AccountRuleError(`no user ${user}`);
  }
  if (change.visibility !== undefined) await accounts.setVisibility(scope.kind, scope.name, change.visibility === 'inherit' ? undefined : change.visibility === 'private', VISIBILITY_LIMITS);
}

/** What `access show` and `GET /auth/access` say about a namespace or repository. */
export async function describeAccess(accounts: AccountStore, scope: AccessScope, defaultPrivate: boolean) {
  const [visibility, grants] = await Promise.all([accounts.visibility([...new Set([scope.name, namespaceOf(scope.name)])]), accounts.grants(scope)]);
  const rules = new RepositoryAccess(defaultPrivate, visibility, []);
  const own = visibility.find((row) => row.kind === scope.kind && row.name === scope.name);
  return {
    kind: scope.kind,
    name: scope.name,
    set: own ? (own.private ? 'private' : 'public') : 'inherit',
    effective: (scope.kind === 'namespace' ? rules.isNamespacePrivate(scope.name) : rules.isPrivate(scope.name)) ? 'private' : 'public',
    grants: grants.map(({ grantee, access, createdAt }) => ({ user: grantee, access, createdAt })),
  };
}

export function namespaceOf(repository: string): string {
  const slash = repository.indexOf('/');
  return slash < 0 ? repository : repository.slice(0, slash);
}

function key(kind: string, name: string): string {
  return `${kind}\0${name}`;
}
