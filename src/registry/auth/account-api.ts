/**
 * A user's own account, over HTTP (for scripts and the web pages):
 *
 *   GET    /auth/tokens           → 200 {"tokens": [...]}: the caller's and their robots', never a secret or hash
 *   POST   /auth/tokens           {"name", "repositories", "actions", "expiresInDays"?, "robot"?} → 201 the token and its "secret", once
 *   DELETE /auth/tokens/<id>      → 204; 404 when it is not a live token of the caller or their robots
 *   GET    /auth/robots           → 200 {"robots": [...]}
 *   POST   /auth/robots           {"name"} → 201 robot account <caller>+<name>
 *   DELETE /auth/robots/<name>    → 204, its tokens and grants with it
 *   GET    /auth/access?name=     → 200 the visibility and grants of a namespace or repository the caller owns
 *   PATCH  /auth/access?name=     {"visibility"?: "public"|"private"|"inherit", "grants"?: {"<user>": "pull"|"push"|null}} → 200 the same, after
 *
 * Each request carries the user's own password (Basic), or, from a page of
 * the web front end, its session cookie and the page's CSRF token in
 * `X-CSRF-Token`. An access token cannot manage the account: a leaked CI
 * secret must not mint more secrets or open a repository.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AccountConflictError, AccountRuleError, type AccountStore } from '../../metadata/accounts/store.ts';
import { RegistryError } from '../errors.ts';
import { readBody } from '../http/body.ts';
import { createAccessToken, createRobot, describeToken, revokeOwnToken, ROBOT_NAME, tokenHolders, TokenRequestError, tokensOf } from './access-tokens.ts';
import type { Principal } from './users.ts';
import { accessScopeOf, applyAccessChange, describeAccess, namespaceOf, type AccessChange, type AccessScope } from './access.ts';

const MAX_BODY_BYTES = 8 * 1024;
/** Tokens listed per holder (the caller, each robot). */
const TOKENS_PER_HOLDER = 1000;

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
    try {
      await applyAccessChange(options.accounts, scope, change);
    } catch (err) {
      if (err instanceof AccountRuleError) throw new RegistryError('REQUEST_INVALID', err.message);
      throw err;
    } finally {
      await options.changed();
    }
    request.log.info({ scope, visibility: change.visibility, grants: change.grants }, 'access changed');
    return describeAccess(options.accounts, scope, options.defaultPrivate);
  });

  const holders = (username: string) => tokenHolders(options.accounts, username);

  app.get('/auth/tokens', async (request) => {
    const username = await owner(request);
    return { tokens: (await tokensOf(options.accounts, username, TOKENS_PER_HOLDER)).map((token) => describeToken(token)) };
  });

  app.post('/auth/tokens', async (request, reply) => {
    const username = await owner(request);
    const { robot, ...fields } = parseTokenRequest(await jsonBody(request));
    const holder = robot === undefined ? username : `${username}+${robot}`;
    if (!(await holders(username)).includes(holder)) throw new RegistryError('REQUEST_INVALID', `${username} has no robot account ${holder}`);
    try {
      const { secret, token } = await createAccessToken(options.accounts, { owner: holder, ...fields });
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
    if (!(await revokeOwnToken(options.accounts, username, id))) throw new RegistryError('NAME_UNKNOWN', `no live token ${id.slice(0, 64)} of ${username}`);
    await options.changed();
    request.log.info({ user: username, token: id }, 'access token revoked');
    return reply.code(204).send();
  });

  app.get('/auth/robots', async (request) => {
    const username = await owner(request);
    return { robots: (await options.accounts.robots(username)).map(({ username: name, createdAt, disabled }) => ({ name, createdAt, disabled })) };
  });

  app.post('/auth/robots', async (request, reply) => {
    const username = await owner(request);
    const { name } = await jsonBody(request);
    if (typeof name !== 'string') throw new RegistryError('REQUEST_INVALID', 'a robot is {"name": "<its name after +>"}');
    try {
      const robot = await createRobot(options.accounts, username, name);
      await options.changed();
      request.log.info({ user: username, robot: robot.username }, 'robot account created');
      return reply.code(201).send({ name: robot.username, createdAt: robot.createdAt, disabled: false });
    } catch (err) {
      if (err instanceof AccountConflictError || err instanceof AccountRuleError) throw new RegistryError('REQUEST_INVALID', err.message);
      throw err;
    }
  });

  app.delete('/auth/robots/:name', async (request, reply) => {
    const username = await owner(request);
    const { name } = request.params as { name: string };
    if (!(await options.accounts.removeRobot(`${username}+${name}`, username))) throw new RegistryError('NAME_UNKNOWN', `${username} has no robot account ${name.slice(0, 64)}`);
    await options.changed();
    request.log.info({ user: username, robot: `${username}+${name}` }, 'robot account deleted');
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

function parseAccessChange(body: Record<string, unknown>): AccessChange {
  const { visibility, grants = {} } = body;
  const levels = new Set(['pull', 'push', null]);
  const grantsOk = typeof grants === 'object' && grants !== null && !Array.isArray(grants) && Object.keys(grants).length <= 64 && Object.values(grants).every((level) => levels.has(level as string | null));
  if ((visibility !== undefined && visibility !== 'public' && visibility !== 'private' && visibility !== 'inherit') || !grantsOk) {
    throw new RegistryError('REQUEST_INVALID', 'an access change is {"visibility"?: "public"|"private"|"inherit", "grants"?: {"<user>": "pull"|"push"|null}} (64 users at most)');
  }
  return { ...(visibility === undefined ? {} : { visibility }), grants: grants as Record<string, 'pull' | 'push' | null> };
}

function parseTokenRequest(body: Record<string, unknown>): { name: string; repositories: string[]; actions: string[]; expiresInDays?: number; robot?: string } {
  const { name, repositories, actions, expiresInDays, robot } = body;
  if (robot !== undefined && (typeof robot !== 'string' || !ROBOT_NAME.test(robot))) throw new RegistryError('REQUEST_INVALID', 'robot names one of your robot accounts (its part after +)');
  const strings = (list: unknown): list is string[] => Array.isArray(list) && list.length <= 64 && list.every((item) => typeof item === 'string');
  if (typeof name !== 'string' || !strings(repositories) || !strings(actions) || (expiresInDays !== undefined && typeof expiresInDays !== 'number')) {
    throw new RegistryError('REQUEST_INVALID', 'a token request is {"name": string, "repositories": [patterns], "actions": ["pull"|"push"|"delete"], "expiresInDays"?: number}');
  }
  return { name, repositories, actions, ...(expiresInDays === undefined ? {} : { expiresInDays }), ...(robot === undefined ? {} : { robot: robot as string }) };
}
