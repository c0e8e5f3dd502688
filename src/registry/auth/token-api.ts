/**
 * The access-token API, for a user's own tokens (and the web pages):
 *
 *   GET    /auth/tokens        → 200 {"tokens": [...]}, newest first, never a secret or hash
 *   POST   /auth/tokens        {"name", "repositories", "actions", "expiresInDays"?} → 201 the token and its "secret", once
 *   DELETE /auth/tokens/<id>   → 204; 404 when it is not the caller's live token
 *
 * Each request carries the user's own password (Basic). An access token
 * cannot manage tokens: a leaked CI secret must not be able to mint more.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { AccountStore } from '../../metadata/accounts/store.ts';
import { RegistryError } from '../errors.ts';
import { readBody } from '../http/body.ts';
import { createAccessToken, describeToken, TokenRequestError } from './access-tokens.ts';
import type { Principal } from './users.ts';

const MAX_BODY_BYTES = 8 * 1024;

export interface TokenApiOptions {
  accounts: AccountStore;
  /** The user whose password the request's Basic credentials carry; throws UNAUTHORIZED otherwise. */
  signedIn(request: FastifyRequest): Promise<Principal>;
}

export function registerTokenApi(app: FastifyInstance, options: TokenApiOptions): void {
  const owner = async (request: FastifyRequest): Promise<string> => {
    const principal = await options.signedIn(request);
    if (principal.token) throw new RegistryError('DENIED', 'an access token cannot manage access tokens; use the password');
    return principal.username;
  };

  app.get('/auth/tokens', async (request) => {
    const username = await owner(request);
    return { tokens: (await options.accounts.tokens(username)).map((token) => describeToken(token)) };
  });

  app.post('/auth/tokens', async (request, reply) => {
    const username = await owner(request);
    if (!/^application\/json\b/.test(request.headers['content-type'] ?? '')) throw new RegistryError('REQUEST_INVALID', 'send the token request as application/json');
    const body = await readBody(request.raw, MAX_BODY_BYTES, () => new RegistryError('REQUEST_TOO_LARGE', `a token request is at most ${MAX_BODY_BYTES} bytes`));
    const fields = parseFields(body);
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
    request.log.info({ user: username, token: id }, 'access token revoked');
    return reply.code(204).send();
  });
}

function parseFields(body: Buffer): { name: string; repositories: string[]; actions: string[]; expiresInDays?: number } {
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch {
    throw new RegistryError('REQUEST_INVALID', 'the body is not JSON');
  }
  const { name, repositories, actions, expiresInDays } = (value ?? {}) as Record<string, unknown>;
  const strings = (list: unknown): list is string[] => Array.isArray(list) && list.length <= 64 && list.every((item) => typeof item === 'string');
  if (typeof name !== 'string' || !strings(repositories) || !strings(actions) || (expiresInDays !== undefined && typeof expiresInDays !== 'number')) {
    throw new RegistryError('REQUEST_INVALID', 'a token request is {"name": string, "repositories": [patterns], "actions": ["pull"|"push"|"delete"], "expiresInDays"?: number}');
  }
  return { name, repositories, actions, ...(expiresInDays === undefined ? {} : { expiresInDays }) };
}
