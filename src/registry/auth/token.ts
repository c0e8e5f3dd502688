import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { SignJWT, jwtVerify } from 'jose';
import { RegistryError } from '../errors.ts';
import { isRepositoryName } from '../names.ts';
import { KeyedCounter } from '../../core/keyed-counter.ts';
import { LoginThrottledError } from './login-throttle.ts';
import { RepositoryHiddenError, type Action, type Authorizer, type Identity } from './types.ts';
import type { TokenAction } from '../../metadata/accounts/store.ts';
import type { CatalogFilter } from '../../metadata/oci/catalog-walk.ts';
import { catalogFilter } from './catalog-filter.ts';
import type { Principal, UserDirectory } from './users.ts';

export interface TokenAuthorizerOptions {
  /** Base URL of the token endpoint's host; the realm is `<publicUrl>/auth/token`. */
  publicUrl: string;
  service: string;
  issuer: string;
  /** PKCS#8 PEM (Ed25519 or P-256). */
  signingKey: string;
  ttlSeconds: number;
  users: UserDirectory;
  anonymousPull: boolean;
  anonymousDid: string;
}

interface AccessEntry {
  type: string;
  name: string;
  actions: string[];
}

/**
 * Docker's token flow: a request without a token gets a 401 with
 * `WWW-Authenticate: Bearer realm=…,service=…,scope=…`; the client trades
 * Basic credentials at the realm for a short-lived JWT scoped to
 * `repository:<name>:pull,push`. Only a repository's owner (its first path
 * component is their handle) may push. Checked on every request.
 */
export class TokenAuthorizer implements Authorizer {
  readonly #options: TokenAuthorizerOptions;
  readonly #privateKey: KeyObject;
  readonly #publicKey: KeyObject;
  readonly #alg: 'EdDSA' | 'ES256';
  readonly #tarpit = new Tarpit();

  constructor(options: TokenAuthorizerOptions) {
    this.#options = { ...options, publicUrl: options.publicUrl.replace(/\/+$/, '') };
    this.#privateKey = createPrivateKey(options.signingKey);
    this.#publicKey = createPublicKey(this.#privateKey);
    this.#alg = this.#privateKey.asymmetricKeyType === 'ed25519' ? 'EdDSA' : 'ES256';
  }

  get realm(): string {
    return `${this.#options.publicUrl}/auth/token`;
  }

  async base(request: FastifyRequest): Promise<Identity> {
    this.#refuseIfStale();
    const caller = await this.#caller(request);
    if (caller) return caller.identity;
    if (request.headers.authorization) throw this.#challenge(undefined, 'invalid_token');
    throw this.#challenge();
  }

  async authorize(request: FastifyRequest, action: Action, repository?: string): Promise<Identity> {
    this.#refuseIfStale();
    const caller = await this.#caller(request);
    if (!caller) {
      if (request.headers.authorization) throw this.#challenge(scopeFor(action, repository), 'invalid_token');
      const anonymous = { did: this.#options.anonymousDid };
      if (action === 'pull' && this.#options.anonymousPull) {
        if (repository && this.#hidden(undefined, repository)) throw new RepositoryHiddenError(anonymous);
        return anonymous;
      }
      if (action === 'catalog' && this.#options.anonymousPull) return anonymous;
      throw this.#challenge(scopeFor(action, repository));
    }
    // A CI token has no business listing every name its user may see: its scope is a few patterns.
    if (action === 'catalog' && caller.user?.token) throw new RegistryError('DENIED', 'an access token does not list the catalog');
    if (!caller.allows(action, repository)) {
      // Only a caller whose token asked for this repository learns anything from the answer; it gets the one a missing name gets.
      if (action === 'pull' && repository && caller.covers(repository) && this.#hidden(caller.user, repository)) throw new RepositoryHiddenError(caller.identity);
      // Signed in, and not allowed whatever token they fetch: DENIED. Allowed, but this token does not say so: a challenge for a better one.
      // Privacy is left out here: a pull of a private repository is answered as missing once the token asks for it, as for any name.
      if (caller.user && action !== 'catalog' && repository && !this.#allowedActions(caller.user, 'repository', repository, { ignorePrivacy: true }).includes(action)) {
        const through = caller.user.token ? ` with access token ${caller.user.token.id}` : '';
        throw new RegistryError('DENIED', `${caller.user.username}${through} may not ${VERBS[action]} ${repository}`);
      }
      throw this.#challenge(scopeFor(action, repository), 'insufficient_scope');
    }
    return caller.identity;
  }

  mayPull(identity: Identity, repository: string): boolean {
    return this.#allowedActions(this.#principalOf(identity), 'repository', repository).includes('pull');
  }

  catalogFilter(identity: Identity): CatalogFilter | undefined {
    const access = this.#options.users.access;
    if (!access.anyPrivate) return undefined;
    const user = identity.username ? this.#options.users.byUsername(identity.username) : undefined;
    return catalogFilter(access, { ...(user?.handle !== undefined ? { handle: user.handle } : {}), ...(user ? access.grantsOf(user.username) : { repositories: [], namespaces: [] }) });
  }

  mayDelete(identity: Identity, repository: string): boolean {
    return this.#allowedActions(this.#principalOf(identity), 'repository', repository).includes('delete');
  }

  /**
   * Whether a pull of `repository` is refused only because it is private:
   * then it is answered as missing. A caller who could not pull it were it
   * public (a token that does not cover it, anonymous without
   * `anonymousPull`) is refused as for any name, which says nothing.
   */
  #hidden(user: Principal | undefined, repository: string): boolean {
    const access = this.#options.users.access;
    if (!access.isPrivate(repository) || access.rights(user, repository, this.#options.anonymousPull).includes('pull')) return false;
    if (!user) return this.#options.anonymousPull;
    return !user.token || (user.token.repositories(repository) && user.token.actions.has('pull'));
  }

  #principalOf(identity: Identity): Principal | undefined {
    const user = identity.username ? this.#options.users.byUsername(identity.username) : undefined;
    return user && identity.token ? { ...user, token: identity.token } : user;
  }

  viewer(username?: string): Identity & { signedIn: boolean } {
    const user = username ? this.#options.users.byUsername(username) : undefined;
    return user ? { did: user.did, username: user.username, ...(user.handle === undefined ? {} : { handle: user.handle }), signedIn: true } : { did: this.#options.anonymousDid, signedIn: false };
  }

  ownerOf(repository: string): { handle: string; did: string } | undefined {
    const user = this.#options.users.byHandle(repository.split('/')[0] as string);
    return user?.handle === undefined ? undefined : { handle: user.handle, did: user.did };
  }

  async login(username: string, password: string, address: string): Promise<Identity | undefined> {
    const user = await this.#options.users.verify(username, password, address);
    // A web session acts as the whole user, so an access token, which is narrower, never opens one.
    return user && !user.token ? { did: user.did, username: user.username } : undefined;
  }

  #refuseIfStale(): void {
    if (this.#options.users.stale) throw new RegistryError('UNAVAILABLE', 'the accounts database cannot be read; retry later', { headers: { 'retry-after': '5' } });
  }

  /** Rereads the accounts now if they changed (after this instance changed them). */
  refreshAccounts(): Promise<void> {
    return this.#options.users.refresh();
  }

  /** The user whose Basic credentials `request` carries (through the login throttle); UNAUTHORIZED without them. */
  async signedIn(request: FastifyRequest): Promise<Principal> {
    const basic = parseBasic(request.headers.authorization);
    const user = basic ? await this.#verify(request, basic) : undefined;
    if (!user) throw new RegistryError('UNAUTHORIZED', basic ? 'invalid username or password' : 'send your user name and password (Basic)', { headers: { 'www-authenticate': 'Basic realm="holdfast", charset="UTF-8"' } });
    return user;
  }

  /** `GET /auth/token?service=&scope=…` with optional Basic credentials. */
  register(app: FastifyInstance): void {
    app.get('/auth/token', async (request, reply) => {
      const basic = parseBasic(request.headers.authorization);
      let user: Principal | undefined;
      if (basic) {
        user = await this.#verify(request, basic);
        if (!user) throw new RegistryError('UNAUTHORIZED', 'invalid username or password');
      }
      const query = request.query as Record<string, string | string[] | undefined>;
      const scopes = [query.scope ?? []].flat().flatMap((scope) => scope.split(' ')).filter(Boolean);
      const access: AccessEntry[] = [];
      for (const scope of scopes) {
        const parsed = parseScope(scope);
        if (!parsed) continue;
        // Pull is granted for a private repository too, whatever the caller may do there: the token's access list must not tell
        // which names are private. Each request checks what the caller may do at that moment (a hidden one answers as missing).
        const allowed = this.#allowedActions(user, parsed.type, parsed.name, { ignorePrivacy: true });
        const granted = parsed.actions.filter((requested) => allowed.includes(requested));
        // Clients ask for pull,push and then delete; whether they may is the caller's right (a token may lack it), not the client's wording.
        if (granted.includes('push') && allowed.includes('delete') && !granted.includes('delete')) granted.push('delete');
        if (granted.length > 0) access.push({ type: parsed.type, name: parsed.name, actions: granted });
      }
      const issuedAt = Math.floor(Date.now() / 1000);
      const token = await new SignJWT({ access, ...(user ? { did: user.did } : {}), ...(user?.token ? { tid: user.token.id } : {}) })
        .setProtectedHeader({ alg: this.#alg })
        .setIssuer(this.#options.issuer)
        .setAudience(this.#options.service)
        .setSubject(user?.username ?? '')
        .setIssuedAt(issuedAt)
        .setExpirationTime(issuedAt + this.#options.ttlSeconds)
        .sign(this.#privateKey);
      return reply.code(200).send({ token, access_token: token, expires_in: this.#options.ttlSeconds, issued_at: new Date(issuedAt * 1000).toISOString() });
    });
  }

  close(): Promise<void> {
    return this.#options.users.close();
  }

  async #verify(request: FastifyRequest, basic: { username: string; password: string }): Promise<Principal | undefined> {
    try {
      return await this.#options.users.verify(basic.username, basic.password, request.ip);
    } catch (err) {
      if (!(err instanceof LoginThrottledError)) throw err;
      request.log.warn({ reason: err.message, address: request.ip }, 'login refused before the password check');
      await this.#tarpit.hold(request.ip);
      throw new RegistryError('TOOMANYREQUESTS', err.message, { headers: { 'retry-after': String(err.retryAfterSeconds) } });
    }
  }

  /**
   * What `user` may do on `name` now: what policy allows the user, narrowed
   * to their access token's scope when they signed in with one. With
   * `ignorePrivacy`, pull as if the repository were public.
   */
  #allowedActions(user: Principal | undefined, type: string, name: string, options: { ignorePrivacy?: boolean } = {}): string[] {
    if (type === 'registry' && name === 'catalog') return !user?.token && (user || this.#options.anonymousPull) ? ['*'] : [];
    if (type !== 'repository' || !isRepositoryName(name)) return [];
    const actions: string[] = this.#options.users.access.rights(user, name, this.#options.anonymousPull);
    if (options.ignorePrivacy && !actions.includes('pull') && (user || this.#options.anonymousPull)) actions.unshift('pull');
    if (actions.includes('delete')) actions.push('*');
    const token = user?.token;
    if (!token) return actions;
    if (!token.repositories(name)) return [];
    return actions.filter((action) => action !== '*' && token.actions.has(action as TokenAction));
  }

  /**
   * Who sent `request`, what they may do, and whether their credentials
   * cover pulling a repository at all (a registry token issued for other
   * names does not; Basic credentials cover every name).
   */
  async #caller(request: FastifyRequest): Promise<
    { identity: Identity; user?: Principal; allows: (action: Action, repository?: string) => boolean; covers: (repository: string) => boolean } | undefined
  > {
    const header = request.headers.authorization;
    if (!header) return undefined;
    const basic = parseBasic(header);
    if (basic) {
      const user = await this.#verify(request, basic);
      if (!user) return undefined;
      return {
        identity: identityOf(user),
        user,
        allows: (action, repository) =>
          action === 'catalog' ? true : this.#allowedActions(user, 'repository', repository ?? '').includes(action),
        covers: () => true,
      };
    }
    const token = /^Bearer (.+)$/.exec(header)?.[1];
    if (!token) return undefined;
    try {
      const { payload } = await jwtVerify(token, this.#publicKey, { issuer: this.#options.issuer, audience: this.#options.service, algorithms: [this.#alg] });
      const access = (Array.isArray(payload.access) ? payload.access : []) as AccessEntry[];
      const subject = typeof payload.sub === 'string' ? payload.sub : '';
      const tokenId = typeof payload.tid === 'string' ? payload.tid : undefined;
      const user = !subject ? undefined : tokenId ? await this.#options.users.tokenPrincipal(subject, tokenId) : this.#options.users.byUsername(subject);
      // A user removed or disabled, or an access token revoked, since this was issued: it dies with them, never falling back to the anonymous DID.
      if (subject && !user) return undefined;
      const identity = user ? identityOf(user) : { did: this.#options.anonymousDid };
      return {
        identity,
        user,
        // What the token says, and still what its holder may do now.
        allows: (action, repository) =>
          access.some((entry) =>
            action === 'catalog'
              ? entry.type === 'registry' && entry.name === 'catalog'
              : entry.type === 'repository' && entry.name === repository && (entry.actions.includes(action) || entry.actions.includes('*')),
          ) && (action === 'catalog' || this.#allowedActions(user, 'repository', repository ?? '').includes(action)),
        covers: (repository) => access.some((entry) => entry.type === 'repository' && entry.name === repository && (entry.actions.includes('pull') || entry.actions.includes('*'))),
      };
    } catch {
      return undefined;
    }
  }

  #challenge(scope?: string, error?: string): RegistryError {
    const parts = [`realm="${this.realm}"`, `service="${this.#options.service}"`];
    if (scope) parts.push(`scope="${scope}"`);
    if (error) parts.push(`error="${error}"`);
    return new RegistryError('UNAUTHORIZED', undefined, { headers: { 'www-authenticate': `Bearer ${parts.join(',')}` } });
  }
}

/**
 * Holds a refused login's answer for a moment, so a client that retries at
 * once costs a sleeping socket rather than a busy event loop. Each address
 * gets only so many held answers; past that, answers go out at once.
 */
class Tarpit {
  static readonly DELAY_MS = 1000;
  static readonly MAX_HELD_PER_ADDRESS = 128;
  readonly #held = new KeyedCounter();

  async hold(address: string): Promise<void> {
    if (this.#held.count(address) >= Tarpit.MAX_HELD_PER_ADDRESS) return;
    this.#held.increment(address);
    try {
      await new Promise((resolve) => setTimeout(resolve, Tarpit.DELAY_MS).unref());
    } finally {
      this.#held.decrement(address);
    }
  }
}

const VERBS: Readonly<Record<Exclude<Action, 'catalog'>, string>> = Object.freeze({ pull: 'pull from', push: 'push to', delete: 'delete from' });

function identityOf(user: Principal): Identity {
  return { did: user.did, username: user.username, ...(user.token ? { token: user.token } : {}) };
}

function scopeFor(action: Action, repository?: string): string | undefined {
  if (action === 'catalog') return 'registry:catalog:*';
  if (!repository) return undefined;
  return `repository:${repository}:${action === 'push' ? 'pull,push' : action === 'delete' ? 'delete' : 'pull'}`;
}

function parseScope(scope: string): { type: string; name: string; actions: string[] } | undefined {
  const match = /^([a-z]+):(.+):([a-z*,]+)$/.exec(scope);
  if (!match) return undefined;
  return { type: match[1] as string, name: match[2] as string, actions: (match[3] as string).split(',') };
}

function parseBasic(header: string | undefined): { username: string; password: string } | undefined {
  const encoded = /^Basic ([A-Za-z0-9+/=]+)$/.exec(header ?? '')?.[1];
  if (!encoded) return undefined;
  const decoded = Buffer.from(encoded, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}
