/**
 * A user's own account, over HTTP (for scripts and the web pages):
 *
 *   GET    /auth/tokens           → 200 {"tokens": [...]}, newest first, never a secret or hash
 *   POST   /auth/tokens           {"name", "repositories", "actions", "expiresInDays"?} → 201 the token and its "secret", once
 *   DELETE /auth/tokens/<id>      → 204; 404 when it is not the caller's live token
 *   GET    /auth/access?name=     → 200 the visibility and grants of a namespace or repository the caller owns
 *   PATCH  /auth/access?name=     {"visibility"?: "public"|"private"|"inherit", "grants"?: {"<user>": "pull"|"push"|null}} → 200 the same, after
 *
 * Each request carries the user's own password (Basic). An access token
 * cannot manage the account: a leaked CI secret must not mint more secrets
 * or open a repository.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AccountStore } from '../../metadata/accounts/store.ts';
import { RegistryError } from '../errors.ts';
import { readBody } from '../http/body.ts';
import { createAccessToken, describeToken, TokenRequestError } from './access-tokens.ts';
import type { Principal } from './users.ts';
import { accessScopeOf, describeAccess, namespaceOf, type AccessScope } from './access.ts';

const MAX_BODY_BYTES = 8 * 1024;

export interface AccountApiOptions {
  accounts: AccountStore;
  /** `auth.defaultVisibility: private`, for what applies where nothing is set. */
  defaultPrivate: boolean;
  /** Called after a change, so this instance applies it at once (the others within their refresh). */
  changed(): Promise<void>;
  /** The user whose password the request's Basic credentials carry; throws UNAUTHORIZED otherwise. */
  signedIn(request: FastifyRequest): Promise<Principal>;
}

export function registerAccountApi(app: FastifyInstance, options: AccountApiOptions): void {
  const signedIn = async (request: FastifyRequest): Promise<Principal> => {
    const principal = await options.signedIn(request);
    if (principal.token) throw new RegistryError('DENIED', 'an access token cannot manage the account; use the password');
    return principal;
  };
  const owner = async (request: FastifyRequest): Promise<string> => (await signedIn(request)).username;
  /** The namespace or repository `?name=` names, which the caller must own; anyone else is refused alike, whether it exists or not. */
  const owned = async (request: FastifyRequest): Promise<AccessScope> => {
    const principal = await signedIn(request);
    const name = (request.query as Record<string, unknown>).name;
    const scope = typeof name === 'string' ? accessScopeOf(name) : undefined;
    if (!scope) throw new RegistryError('NAME_INVALID', 'name a namespace (alice) or a repository (alice/app) with ?name=');
    if (namespaceOf(scope.name) !== principal.handle) throw new RegistryError('DENIED', `${principal.username} does not own ${scope.name}`);
    return scope;
  };

  app.get('/auth/access', async (request) => describeAccess(options.accounts, await owned(request), options.defaultPrivate));

  app.patch('/auth/access', async (request) => {
    const scope = await owned(request);
    const change = parseAccessChange(await jsonBody(request));
    for (const [user, level] of Object.entries(change.grants)) {
      if (level !== null && !(await options.accounts.user(user))) throw new RegistryError('REQUEST_INVALID', `no user ${user}`);
    }
    if (change.visibility !== undefined) await options.accounts.setVisibility(scope.kind, scope.name, change.visibility === 'inherit' ? undefined : change.visibility === 'private');
    for (const [user, level] of Object.entries(change.grants)) {
      if (level === null) await options.accounts.revokeGrant(scope.kind, scope.name, user);
      else await options.accounts.grant(scope.kind, scope.name, user, level);
    }
    await options.changed();
    request.log.info({ scope, visibility: change.visibility, grants: change.grants }, 'access changed');
    return describeAccess(options.accounts, scope, options.defaultPrivate);
  });

  app.get('/auth/tokens', async (request) => {
    const username = await owner(request);
    return { tokens: (await options.accounts.tokens(username)).map((token) => describeToken(token)) };
  });

  app.post('/auth/tokens', async (request, reply) => {
    const username = await owner(request);
    const fields = parseTokenRequest(await jsonBody(request));
    try {
      const { secret, token } = await createAccessToken(options.accounts, { owner: username, ...fields });
      request.log.info({ user: username, token: token.id, repositories: token.repositories, actions: token.actions }, 'access token created');
      return reply.code(201).send({ ...describeToken(token), secret });
    } catch (err) {
      if (err instanceof TokenRequestError) throw new RegistryError('REQUEST_INVALID', err.message);
      throw err;
    }
  });

  app.delete('/auth/tokens/:id', async (request, reply) => {
    const username = await owner(request);
    const { id } = request.params as { id: string };
    if (!(await options.accounts.revokeToken(id, username))) throw new RegistryError('NAME_UNKNOWN', `no live token ${id.slice(0, 64)} of ${username}`);
    await options.changed();
    request.log.info({ user: username, token: id }, 'access token revoked');
    return reply.code(204).send();
  });
}

/** The body as JSON, after the caller was checked: at most 8 KiB. */
async function jsonBody(request: FastifyRequest): Promise<Record<string, unknown>> {
  if (!/^application\/json\b/.test(request.headers['content-type'] ?? '')) throw new RegistryError('REQUEST_INVALID', 'send the request as application/json');
  const body = await readBody(request.raw, MAX_BODY_BYTES, () => new RegistryError('REQUEST_TOO_LARGE', `a request body is at most ${MAX_BODY_BYTES} bytes`));
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new RegistryError('REQUEST_INVALID', 'the body is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new RegistryError('REQUEST_INVALID', 'the body is a JSON object');
  return value as Record<string, unknown>;
}

function parseAccessChange(body: Record<string, unknown>): { visibility?: 'public' | 'private' | 'inherit'; grants: Record<string, 'pull' | 'push' | null> } {
  const { visibility, grants = {} } = body;
  const levels = new Set(['pull', 'push', null]);
  const grantsOk = typeof grants === 'object' && grants !== null && !Array.isArray(grants) && Object.keys(grants).length <= 64 && Object.values(grants).every((level) => levels.has(level as string | null));
  if ((visibility !== undefined && visibility !== 'public' && visibility !== 'private' && visibility !== 'inherit') || !grantsOk) {
    throw new RegistryError('REQUEST_INVALID', 'an access change is {"visibility"?: "public"|"private"|"inherit", "grants"?: {"<user>": "pull"|"push"|null}} (64 users at most)');
  }
  return { ...(visibility === undefined ? {} : { visibility }), grants: grants as Record<string, 'pull' | 'push' | null> };
}

function parseTokenRequest(body: Record<string, unknown>): { name: string; repositories: string[]; actions: string[]; expiresInDays?: number } {
  const { name, repositories, actions, expiresInDays } = body;
  const strings = (list: unknown): list is string[] => Array.isArray(list) && list.length <= 64 && list.every((item) => typeof item === 'string');
  if (typeof name !== 'string' || !strings(repositories) || !strings(actions) || (expiresInDays !== undefined && typeof expiresInDays !== 'number')) {
    throw new RegistryError('REQUEST_INVALID', 'a token request is {"name": string, "repositories": [patterns], "actions": ["pull"|"push"|"delete"], "expiresInDays"?: number}');
  }
  return { name, repositories, actions, ...(expiresInDays === undefined ? {} : { expiresInDays }) };
}
