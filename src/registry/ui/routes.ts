import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseDigest } from '../../core/digest.ts';
import { KeyedCounter } from '../../core/keyed-counter.ts';
import { LoginThrottledError } from '../auth/login-throttle.ts';
import { RegistryError } from '../errors.ts';
import { asRegistryError, stringQuery } from '../http/app.ts';
import { readBody } from '../http/body.ts';
import { actorOf } from '../http/context.ts';
import { isRepositoryName, isTag } from '../names.ts';
import { deleteReference } from '../routes/manifests.ts';
import { ASSETS } from './assets.ts';
import type { UiContext, UiRequest } from './context.ts';
import type { Html } from './html.ts';
import { messagePage, type PageViewer } from './layout.ts';
import { deletePage, loginPage } from './pages/forms.ts';
import { homePage } from './pages/home.ts';
import { manifestPage } from './pages/manifest.ts';
import { repositoryPage } from './pages/repository.ts';
import { storagePage } from './pages/storage.ts';
import { tokensPage } from './pages/tokens.ts';
import { accessPage } from './pages/access.ts';
import { accessScopeOf, applyAccessChange, describeAccess, namespaceOf, type AccessChange, type AccessScope } from '../auth/access.ts';
import { createAccessToken, createRobot, revokeOwnToken, tokenHolders, TokenRequestError } from '../auth/access-tokens.ts';
import { AccountConflictError, AccountRuleError } from '../../metadata/accounts/store.ts';

/** Longest form body the pages accept (a login or a delete). */
const MAX_FORM_BYTES = 8 * 1024;
/** Pages drawn at once by this process, and for one client address. */
const MAX_PAGES_IN_FLIGHT = 32;
const MAX_PAGES_PER_ADDRESS = 8;
const ALL = '*';

const PAGE_HEADERS = Object.freeze({
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // Not no-referrer: with it, Chromium sends `Origin: null` on the pages' own form posts.
  'referrer-policy': 'same-origin',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
});

const STATIC = new Map(Object.values(ASSETS).map((asset) => [asset.name, asset]));

/**
 * The web pages, under `/ui/`, in a Fastify scope of their own: their hooks,
 * error pages and form parsing never run for `/v2/`. Who may see what is the
 * API's authorizer's answer (`mayPull`, `mayDelete`), asked per repository.
 */
export function registerUi(app: FastifyInstance, ui: UiContext): void {
  const inFlight = new KeyedCounter();
  void app.register(async (scope) => {
    // Pages share the database with /v2/: only so many render at once, from one address and in all.
    scope.addHook('onRequest', async (request) => {
      if (inFlight.count(ALL) >= MAX_PAGES_IN_FLIGHT || inFlight.count(request.ip) >= MAX_PAGES_PER_ADDRESS) {
        throw new RegistryError('TOOMANYREQUESTS', 'Too many pages are being drawn right now; try again in a moment.', { headers: { 'retry-after': '1' } });
      }
      inFlight.increment(ALL);
      inFlight.increment(request.ip);
      (request as FastifyRequest & { counted?: boolean }).counted = true;
    });
    scope.addHook('onResponse', async (request) => {
      if (!(request as FastifyRequest & { counted?: boolean }).counted) return;
      inFlight.decrement(ALL);
      inFlight.decrement(request.ip);
    });
    scope.addHook('onSend', async (_request, reply) => {
      reply.headers(PAGE_HEADERS);
      if (!reply.hasHeader('cache-control')) reply.header('cache-control', 'no-store');
    });
    scope.setErrorHandler(async (error, request, reply) => {
      const { status, message, headers } = pageError(error);
      if (status >= 500) request.log.error({ err: error }, 'page failed');
      const viewer = await viewerFor(ui, request, reply).catch(() => fallbackViewer(ui));
      reply.headers(headers);
      return send(reply.code(status), messagePage(viewer.viewer, titleOf(status), message));
    });
    scope.setNotFoundHandler(async (request, reply) => {
      const { viewer } = await viewerFor(ui, request, reply);
      return send(reply.code(404), messagePage(viewer, 'Not found', 'There is no page at this address.'));
    });

    scope.get('/', async (request, reply) => send(reply, await homePage(ui, await viewerFor(ui, request, reply), query(request))));
    scope.get('/static/:name', async (request, reply) => {
      const asset = STATIC.get((request.params as { name: string }).name);
      if (!asset) throw new RegistryError('NAME_UNKNOWN', 'There is no such file.');
      return reply.type(asset.type).header('cache-control', 'public, max-age=31536000, immutable').send(asset.body);
    });

    scope.get('/login', async (request, reply) => {
      const call = await viewerFor(ui, request, reply);
      if (!ui.loginEnabled) return reply.redirect('/ui/', 303);
      return send(reply, loginPage(call, safeNext(query(request).next)));
    });
    scope.post('/login', async (request, reply) => {
      const call = await viewerFor(ui, request, reply);
      const form = await readForm(ui, request, call);
      const next = safeNext(form.get('next') ?? undefined);
      const login = ui.registry.authorizer.login;
      if (!login) return reply.redirect('/ui/', 303);
      const identity = await login.call(ui.registry.authorizer, form.get('username') ?? '', form.get('password') ?? '', request.ip);
      if (!identity?.username) {
        request.log.info({ address: request.ip }, 'web login refused');
        return send(reply.code(401), loginPage(call, next, 'Wrong user name or password.'));
      }
      ui.sessions.startSession(reply, identity.username);
      return reply.redirect(next, 303);
    });
    scope.post('/logout', async (request, reply) => {
      const call = await viewerFor(ui, request, reply);
      await readForm(ui, request, call);
      ui.sessions.endSession(reply);
      return reply.redirect('/ui/', 303);
    });

    scope.get('/storage', async (request, reply) => {
      const call = await viewerFor(ui, request, reply);
      if (ui.loginEnabled && !call.viewer.signedIn) return reply.redirect(`/ui/login?next=${encodeURIComponent('/ui/storage')}`, 303);
      return send(reply, await storagePage(ui, call, query(request)));
    });

    scope.get('/tokens', async (request, reply) => {
      const call = await viewerFor(ui, request, reply);
      const accounts = accountsOf(ui);
      if (!call.viewer.signedIn) return reply.redirect(`/ui/login?next=${encodeURIComponent('/ui/tokens')}`, 303);
      return send(reply, await tokensPage(ui, call, accounts));
    });
    scope.post('/tokens', async (request, reply) => {
      const { call, form, accounts, username } = await accountForm(ui, request, reply);
      const holder = form.get('for') || username;
      if (!(await tokenHolders(accounts.store, username)).includes(holder)) throw new RegistryError('DENIED', `${username} has no robot account ${holder}.`);
      try {
        const { secret, token } = await createAccessToken(accounts.store, {
          owner: holder,
          name: form.get('name') ?? '',
          repositories: (form.get('repositories') ?? '').split(/[\s,]+/).filter(Boolean),
          actions: form.getAll('actions'),
          expiresInDays: Number(form.get('days')),
        });
        request.log.info({ user: username, token: token.id, owner: holder }, 'access token created in the web pages');
        // The secret is in this answer alone: no redirect, and no-store, as every page.
        return send(reply.code(201), await tokensPage(ui, call, accounts, { created: { secret, owner: holder } }));
      } catch (err) {
        if (!(err instanceof TokenRequestError)) throw err;
        return send(reply.code(400), await tokensPage(ui, call, accounts, { error: `${err.message}.` }));
      }
    });
    scope.post('/tokens/revoke', async (request, reply) => {
      const { form, accounts, username } = await accountForm(ui, request, reply);
      const id = form.get('id') ?? '';
      if (!(await revokeOwnToken(accounts.store, username, id))) throw new RegistryError('NAME_UNKNOWN', 'No such live token.');
      await accounts.changed();
      request.log.info({ user: username, token: id }, 'access token revoked in the web pages');
      return reply.redirect('/ui/tokens', 303);
    });
    scope.post('/robots', async (request, reply) => {
      const { call, form, accounts, username } = await accountForm(ui, request, reply);
      const name = form.get('name') ?? '';
      try {
        await createRobot(accounts.store, username, name);
      } catch (err) {
        if (!(err instanceof AccountRuleError || err instanceof AccountConflictError)) throw err;
        return send(reply.code(400), await tokensPage(ui, call, accounts, { error: `${err.message}.` }));
      }
      await accounts.changed();
      return reply.redirect('/ui/tokens', 303);
    });
    scope.post('/robots/delete', async (request, reply) => {
      const { form, accounts, username } = await accountForm(ui, request, reply);
      if (!(await accounts.store.removeRobot(form.get('name') ?? '', username))) throw new RegistryError('NAME_UNKNOWN', 'No such robot account.');
      await accounts.changed();
      return reply.redirect('/ui/tokens', 303);
    });

    scope.get('/access', async (request, reply) => {
      const call = await viewerFor(ui, request, reply);
      const accounts = accountsOf(ui);
      if (!call.viewer.signedIn) return reply.redirect(`/ui/login?next=${encodeURIComponent(request.url)}`, 303);
      const scope = ownedScope(call, query(request).name);
      return send(reply, accessPage(call, scope, await describeAccess(accounts.store, scope, ui.defaultPrivate)));
    });
    scope.post('/access', async (request, reply) => {
      const { call, form, accounts } = await accountForm(ui, request, reply);
      const scope = ownedScope(call, form.get('name') ?? undefined);
      const change = accessChangeOf(form);
      try {
        await applyAccessChange(accounts.store, scope, change);
      } catch (err) {
        if (!(err instanceof AccountRuleError)) throw err;
        return send(reply.code(400), accessPage(call, scope, await describeAccess(accounts.store, scope, ui.defaultPrivate), `${err.message}.`));
      } finally {
        await accounts.changed();
      }
      request.log.info({ scope, change, username: call.viewer.username }, 'access changed in the web pages');
      return reply.redirect(`/ui/access?name=${encodeURIComponent(scope.name)}`, 303);
    });

    scope.get('/r/*', async (request, reply) => {
      const call = await viewerFor(ui, request, reply);
      const { name, rest } = await visibleRepository(ui, call, (request.params as { '*': string })['*']);
      if (rest === undefined) return send(reply, await repositoryPage(ui, call, name, query(request)));
      const digest = /^manifests\/(.+)$/.exec(rest)?.[1];
      if (digest !== undefined) {
        const manifest = parseDigest(digest) ? await ui.registry.metadata.getManifest(name, digest) : undefined;
        if (!manifest) throw new RegistryError('MANIFEST_UNKNOWN', `No manifest ${digest} in ${name}.`);
        return send(reply, await manifestPage(ui, call, manifest));
      }
      if (rest === 'delete') {
        mayDelete(ui, call, name);
        const target = deletionTarget(query(request));
        if ('digest' in target) {
          if (!(await ui.registry.metadata.getManifest(name, target.digest))) throw new RegistryError('MANIFEST_UNKNOWN', `No manifest ${target.digest} in ${name}.`);
          return send(reply, deletePage(ui, call, name, { digest: target.digest, tags: await ui.browse.tagsOf(name, target.digest, 100) }));
        }
        return send(reply, deletePage(ui, call, name, target));
      }
      throw new RegistryError('NAME_UNKNOWN', 'There is no page at this address.');
    });
    scope.post('/r/*', async (request, reply) => {
      const call = await viewerFor(ui, request, reply);
      const form = await readForm(ui, request, call);
      const { name, rest } = await visibleRepository(ui, call, (request.params as { '*': string })['*']);
      if (rest !== 'delete') throw new RegistryError('NAME_UNKNOWN', 'There is no page at this address.');
      mayDelete(ui, call, name);
      const target = deletionTarget(Object.fromEntries(form));
      try {
        await deleteReference(ui.registry, name, 'tag' in target ? target.tag : target.digest, { actor: actorOf(call.identity), reason: 'ui' });
      } catch (err) {
        if (err instanceof RegistryError && err.code === 'MANIFEST_UNKNOWN') throw new RegistryError('MANIFEST_UNKNOWN', 'It is already gone.', { cause: err });
        throw err;
      }
      request.log.info({ repository: name, ...target, username: call.identity.username }, 'deleted from the web pages');
      return reply.redirect(`/ui/r/${name}`, 303);
    });
  }, { prefix: '/ui' });
}

/** The accounts, where this registry has them (authentication on); otherwise the pages about them do not exist. */
function accountsOf(ui: UiContext): NonNullable<UiContext['accounts']> {
  if (!ui.accounts) throw new RegistryError('NAME_UNKNOWN', 'There is no page at this address.');
  return ui.accounts;
}

/** A form about the signed-in user's own account: checked as every form is, and refused without a session. */
async function accountForm(ui: UiContext, request: FastifyRequest, reply: FastifyReply) {
  const call = await viewerFor(ui, request, reply);
  const accounts = accountsOf(ui);
  const form = await readForm(ui, request, call);
  if (!call.viewer.signedIn || !call.viewer.username) throw new RegistryError('DENIED', 'Log in first.');
  return { call, form, accounts, username: call.viewer.username };
}

/** The one change an access form asks for. */
function accessChangeOf(form: URLSearchParams): AccessChange {
  const user = form.get('user') ?? '';
  const level = form.get('access');
  const visibility = form.get('visibility');
  switch (form.get('op')) {
    case 'visibility':
      if (visibility === 'public' || visibility === 'private' || visibility === 'inherit') return { visibility, grants: {} };
      break;
    case 'grant':
      if (user && (level === 'pull' || level === 'push')) return { grants: { [user]: level } };
      break;
    case 'revoke':
      if (user) return { grants: { [user]: null } };
      break;
  }
  throw new RegistryError('UNSUPPORTED', 'That is not a change this page makes.');
}

/** The namespace or repository `name` names, if the viewer owns it; anyone else gets the same refusal, whether it exists or not. */
function ownedScope(call: UiRequest, name: string | undefined): AccessScope {
  const scope = name === undefined ? undefined : accessScopeOf(name);
  if (!scope) throw new RegistryError('NAME_INVALID', 'Name a namespace or a repository.');
  if (!call.identity.handle || namespaceOf(scope.name) !== call.identity.handle) throw new RegistryError('DENIED', `You do not own ${scope.name}.`);
  return scope;
}

/** The viewer of a request: its session's user if they still exist (checked each time), else anonymous. */
async function viewerFor(ui: UiContext, request: FastifyRequest, reply: FastifyReply): Promise<UiRequest> {
  const session = ui.loginEnabled ? ui.sessions.session(request) : undefined;
  const identity = ui.registry.authorizer.viewer(session?.username);
  // A session for a user who is gone (or whose signature broke) ends here.
  if (session && !identity.signedIn) ui.sessions.endSession(reply);
  const username = identity.signedIn ? identity.username : undefined;
  const viewer: PageViewer = {
    did: identity.did,
    ...(username ? { username } : {}),
    signedIn: identity.signedIn,
    loginEnabled: ui.loginEnabled,
    csrf: ui.sessions.csrfToken(request, reply, username),
  };
  const { signedIn: _signedIn, ...plain } = identity;
  return { request, reply, identity: plain, viewer };
}

function fallbackViewer(ui: UiContext): { viewer: PageViewer } {
  return { viewer: { did: '', signedIn: false, loginEnabled: ui.loginEnabled, csrf: '' } };
}

/**
 * A repository the viewer may pull, from the path after `/ui/r/`; anything
 * else (a bad name, no such repository, one they may not see) is the same 404.
 */
async function visibleRepository(ui: UiContext, call: UiRequest, path: string): Promise<{ name: string; rest?: string }> {
  const split = path.indexOf('/-/');
  const name = split < 0 ? path.replace(/\/$/, '') : path.slice(0, split);
  const rest = split < 0 ? undefined : path.slice(split + 3);
  const notFound = new RegistryError('NAME_UNKNOWN', `No repository named ${name.slice(0, 256)} here, or you may not see it.`);
  if (!isRepositoryName(name) || !ui.registry.authorizer.mayPull(call.identity, name)) throw notFound;
  if (!(await ui.registry.metadata.repositoryExists(name))) throw notFound;
  return { name, ...(rest !== undefined ? { rest } : {}) };
}

function mayDelete(ui: UiContext, call: UiRequest, name: string): void {
  if (ui.loginEnabled && !call.viewer.signedIn) throw new RegistryError('DENIED', 'Log in to delete.');
  if (!ui.registry.authorizer.mayDelete(call.identity, name)) throw new RegistryError('DENIED', `${call.identity.username ?? 'You'} may not delete from ${name}.`);
}

function deletionTarget(fields: Record<string, string | undefined>): { tag: string } | { digest: string } {
  if (fields.digest !== undefined) {
    if (!parseDigest(fields.digest)) throw new RegistryError('DIGEST_INVALID', 'That is not a digest.');
    return { digest: fields.digest };
  }
  if (fields.tag !== undefined && isTag(fields.tag)) return { tag: fields.tag };
  throw new RegistryError('MANIFEST_INVALID', 'Name a tag or a digest to delete.');
}

/**
 * A state-changing form: same-site (Fetch metadata and Origin, where the
 * browser sends them), URL-encoded, small, and carrying the CSRF token bound
 * to this browser and this user.
 */
async function readForm(ui: UiContext, request: FastifyRequest, call: UiRequest): Promise<URLSearchParams> {
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin') throw new RegistryError('DENIED', 'Forms are accepted only from this site.');
  const origin = request.headers.origin;
  if (origin !== undefined && origin !== `${request.protocol}://${request.host}`) throw new RegistryError('DENIED', 'Forms are accepted only from this site.');
  const type = (request.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/x-www-form-urlencoded') throw new RegistryError('UNSUPPORTED', 'Send the form as application/x-www-form-urlencoded.');
  const body = await readBody(request.raw, MAX_FORM_BYTES, () => new RegistryError('SIZE_INVALID', 'The form is too large.'));
  const form = new URLSearchParams(body.toString('utf8'));
  if (!ui.sessions.checkCsrf(request, form.get('csrf'), call.viewer.username)) {
    throw new RegistryError('DENIED', 'The form expired or came from another page; reload the page and try again.');
  }
  return form;
}

/** Where to go after logging in: a path of these pages, never another site. */
export function safeNext(value: string | undefined): string {
  if (!value || !value.startsWith('/ui/') || value.includes('\\')) return '/ui/';
  try {
    const url = new URL(value, 'http://holdfast.invalid');
    if (url.origin !== 'http://holdfast.invalid' || !url.pathname.startsWith('/ui/') || url.pathname.startsWith('/ui//')) return '/ui/';
    return `${url.pathname}${url.search}`;
  } catch {
    return '/ui/';
  }
}

/** The query string's first value of each key; a control character in one is a bad address, not a database error. */
function query(request: FastifyRequest): Record<string, string | undefined> {
  const result: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries(stringQuery(request.query))) {
    if (value === undefined || value.length > 1024) continue;
    if (/\p{Cc}/u.test(value)) throw new RegistryError('NAME_INVALID', 'The address holds a control character.');
    result[key] = value;
  }
  return result;
}

function send(reply: FastifyReply, body: Html): FastifyReply {
  return reply.type('text/html; charset=utf-8').send(body.toString());
}

/**
 * What a page says for an error: the API's mapping (`asRegistryError`), except
 * that a throttled login is 429, a framework's 4xx keeps its status, a 401
 * (no token challenge here) is 403, and a server error names nothing.
 */
function pageError(error: unknown): { status: number; message: string; headers: Record<string, string> } {
  if (error instanceof LoginThrottledError) return { status: 429, message: error.message, headers: { 'retry-after': String(error.retryAfterSeconds) } };
  const framework = (error as { statusCode?: number }).statusCode;
  if (!(error instanceof RegistryError) && framework !== undefined && framework >= 400 && framework < 500) return { status: framework, message: (error as Error).message, headers: {} };
  const oci = asRegistryError(error);
  const { 'www-authenticate': _challenge, ...headers } = oci.headers;
  if (oci.status >= 500) return { status: oci.status, message: 'Something went wrong on our side; the error is logged.', headers };
  return { status: oci.status === 401 ? 403 : oci.status, message: oci.message, headers };
}

function titleOf(status: number): string {
  if (status === 404) return 'Not found';
  if (status === 403) return 'Not allowed';
  if (status === 429) return 'Too many attempts';
  if (status >= 500) return 'Error';
  return 'Cannot do that';
}
