import type { FastifyRequest } from 'fastify';

/** Who a request acts as: the DID the registry presents to the hold. */
export interface Identity {
  did: string;
  username?: string;
}

export type Action = 'pull' | 'push' | 'catalog';

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
  /** Identity for `GET /v2/`, which only proves credentials work. */
  base(request: FastifyRequest): Promise<Identity>;
  /** Stops what the authorizer runs in the background (password threads). */
  close?(): Promise<void>;
}
