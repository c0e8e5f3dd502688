import type { FastifyRequest } from 'fastify';
import type { Principal } from './users.ts';
import type { CatalogFilter } from '../../metadata/oci/catalog-walk.ts';

/** Who a request acts as: the DID the registry presents to the hold. */
export interface Identity {
  did: string;
  username?: string;
  /** The signed-in user's namespace (repositories under `<handle>/`). */
  handle?: string;
  /** Set when the caller signed in with an access token: nothing it does reaches past the token's scope. */
  token?: Principal['token'];
}

export type Action = 'pull' | 'push' | 'delete' | 'catalog';

/**
 * A pull of a private repository by a caller who may not pull it: the
 * request is answered as for a repository that does not exist, so nobody
 * learns that it does. Thrown by `authorize`, answered by the dispatcher.
 */
export class RepositoryHiddenError extends Error {
  readonly identity: Identity;

  constructor(identity: Identity) {
    super('repository hidden from this caller');
    this.name = 'RepositoryHiddenError';
    this.identity = identity;
  }
}

export interface Authorizer {
  /**
   * Resolves the identity allowed to do `action` on `repository`, or throws
   * `RegistryError` UNAUTHORIZED (with a challenge) or DENIED. Checked on
   * every request.
   */
  authorize(request: FastifyRequest, action: Action, repository?: string): Promise<Identity>;
  /**
   * Whether `identity` may read `repository` by policy, whatever its token's
   * scope: used for cross-repository mounts, where clients often ask for a
   * token scoped to the target alone.
   */
  mayPull(identity: Identity, repository: string): boolean;
  /** The repositories `identity` may see in the catalog and the pages; undefined when it may see them all. */
  catalogFilter(identity: Identity): CatalogFilter | undefined;
  /** Whether `identity` may delete tags and manifests in `repository` (its owner; a push grant does not give it). */
  mayDelete(identity: Identity, repository: string): boolean;
  /**
   * Who a web page acts as: the user `username` names if they still exist,
   * otherwise (or without a name) the identity of a caller with no credentials.
   */
  viewer(username?: string): Identity & { signedIn: boolean };
  /** The user a repository's namespace belongs to, for the pages' grouping. */
  ownerOf(repository: string): { handle: string; did: string } | undefined;
  /**
   * Checks a password through the login throttle: the user, or undefined
   * when it is wrong. Throws `LoginThrottledError` when the throttle refuses
   * to check it. Undefined when logins do not exist (authentication off).
   */
  login?(username: string, password: string, address: string): Promise<Identity | undefined>;
  /** Identity for `GET /v2/`, which only proves credentials work. */
  base(request: FastifyRequest): Promise<Identity>;
  /** Stops what the authorizer runs in the background (password threads). */
  close?(): Promise<void>;
}
