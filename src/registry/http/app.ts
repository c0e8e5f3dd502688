import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { Logger } from 'pino';
import { fastifyTimeouts, watchClients, type ServerTimeouts } from '../../core/http-limits.ts';
import { requestSerializers } from '../../core/logger.ts';
import { metricsRoute, type MetricsAccess } from '../../core/metrics-endpoint.ts';
import { healthAnswer } from '../../core/instance.ts';
import { DriverError } from '../../driver/types.ts';
import { RegistryError, type OciErrorCode } from '../errors.ts';
import { isRepositoryName } from '../names.ts';
import { BlobUnavailableError, ImmutableTagError, MissingBlobError, TagLimitError } from '../../metadata/oci/types.ts';
import { deleteBlob, getBlob, headBlob } from '../routes/blobs.ts';
import { listCatalog, listReferrers, listTags } from '../routes/listings.ts';
import { deleteManifest, getManifest, headManifest, putManifest } from '../routes/manifests.ts';
import { cancelUpload, finishUpload, patchUpload, startUpload, uploadStatus } from '../routes/uploads.ts';
import type { Handler, RegistryContext } from './context.ts';
import { refuseNonLoopbackCallers } from './loopback-guard.ts';
import { absentRepository } from './hidden.ts';
import { RepositoryHiddenError, type Identity } from '../auth/types.ts';
import { matchRoute, requiredAction, type RouteName } from './router.ts';

/** Which handler serves each route and method; anything else is 405 UNSUPPORTED. */
const HANDLERS: Readonly<Record<RouteName, Readonly<Record<string, Handler>>>> = Object.freeze({
  base: {},
  catalog: { GET: listCatalog },
  uploadStart: { POST: startUpload },
  upload: { GET: uploadStatus, PATCH: patchUpload, PUT: finishUpload, DELETE: cancelUpload },
  blob: { GET: getBlob, HEAD: headBlob, DELETE: deleteBlob },
  manifest: { GET: getManifest, HEAD: headManifest, PUT: putManifest, DELETE: deleteManifest },
  tags: { GET: listTags },
  referrers: { GET: listReferrers },
});

const DRIVER_TO_OCI: Readonly<Record<DriverError['code'], OciErrorCode>> = Object.freeze({
  BLOB_UNKNOWN: 'BLOB_UNKNOWN',
  BLOB_UPLOAD_UNKNOWN: 'BLOB_UPLOAD_UNKNOWN',
  BLOB_UPLOAD_INVALID: 'BLOB_UPLOAD_INVALID',
  DIGEST_INVALID: 'DIGEST_INVALID',
  SIZE_INVALID: 'SIZE_INVALID',
  RANGE_INVALID: 'RANGE_INVALID',
  BLOB_TOO_LARGE: 'SIZE_INVALID',
  DENIED: 'DENIED',
  BUSY: 'TOOMANYREQUESTS',
  UNSUPPORTED: 'UNSUPPORTED',
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL: 'INTERNAL',
});

/** Seconds a client is asked to wait after a 429 from a busy driver. */
const BUSY_RETRY_AFTER_SECONDS = '5';

export interface RegistryAppOptions {
  logger: Logger;
  timeouts: ServerTimeouts;
  trustProxy?: false | string[];
  /** Serve only loopback `Host`s and refuse cross-site requests (authentication off). */
  loopbackOnly?: boolean;
  /** Who may read `/metrics` on this port. */
  metricsAccess: { access: MetricsAccess; secret?: Buffer };
  /** Extra routes (the token endpoint) registered by the auth module. */
  plugins?: ((app: FastifyInstance) => void)[];
}

export function buildRegistryApp(ctx: RegistryContext, options: RegistryAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger.child({ component: 'registry' }, { serializers: requestSerializers }) as FastifyBaseLogger,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    ...fastifyTimeouts(options.timeouts),
    trustProxy: options.trustProxy ?? false,
    // Blob bodies are streams of any size; the route reads `request.raw` itself.
    bodyLimit: 1,
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_request, _payload, done) => done(null));

  app.setErrorHandler((error, request, reply) => sendRegistryError(error, request, reply));
  watchClients(app, options.timeouts);
  if (options.loopbackOnly) refuseNonLoopbackCallers(app);
  app.setNotFoundHandler((request, reply) => {
    // The router refuses some encoded paths (`%2e%2e`) before dispatch; a
    // repository-shaped path there still deserves NAME_INVALID.
    const match = matchRoute(request.url.split('?')[0] as string);
    const invalidName = match?.name !== undefined && !isRepositoryName(match.name);
    const error = invalidName ? new RegistryError('NAME_INVALID', undefined, { detail: { name: match?.name } }) : new RegistryError('NAME_UNKNOWN', 'no such route');
    return sendRegistryError(error, request, reply);
  });
  app.addHook('onSend', async (request, reply) => {
    reply.header('docker-distribution-api-version', 'registry/2.0');
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = (request as FastifyRequest & { ociRoute?: string }).ociRoute ?? 'other';
    ctx.metrics.requests.inc({ route, method: request.method, status: String(reply.statusCode) });
  });

  app.get('/healthz', async () => healthAnswer('registry'));
  metricsRoute(app, options.metricsAccess.access, options.metricsAccess.secret, async () => ({ contentType: ctx.metrics.registry.contentType, body: await ctx.metrics.registry.metrics() }));
  for (const plugin of options.plugins ?? []) plugin(app);

  app.route({
    method: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
    url: '/v2/*',
    exposeHeadRoute: false,
    handler: async (request, reply) => dispatch(ctx, request, reply),
  });
  app.route({ method: ['GET', 'HEAD'], url: '/v2', exposeHeadRoute: false, handler: async (request, reply) => dispatch(ctx, request, reply) });
  return app;
}

async function dispatch(ctx: RegistryContext, request: FastifyRequest, reply: FastifyReply): Promise<unknown> {
  const path = request.url.split('?')[0] as string;
  const match = matchRoute(path);
  if (!match) throw new RegistryError('NAME_UNKNOWN', 'no such route');
  (request as FastifyRequest & { ociRoute?: string }).ociRoute = match.route;
  if (match.route === 'base') {
    if (request.method !== 'GET' && request.method !== 'HEAD') throw new RegistryError('UNSUPPORTED', `${request.method} is not supported here`);
    await ctx.authorizer.base(request);
    return reply.code(200).type('application/json').send({});
  }
  const handler = HANDLERS[match.route][request.method];
  if (!handler) throw new RegistryError('UNSUPPORTED', `${request.method} is not supported here`);
  if (match.name !== undefined && !isRepositoryName(match.name)) {
    throw new RegistryError('NAME_INVALID', undefined, { detail: { name: match.name } });
  }
  const action = requiredAction(match.route, request.method);
  let identity: Identity;
  let seen = ctx;
  try {
    identity = action === 'none' ? await ctx.authorizer.base(request) : await ctx.authorizer.authorize(request, action, match.name);
  } catch (err) {
    if (!(err instanceof RepositoryHiddenError)) throw err;
    // A private repository this caller may not pull: answered as a name with nothing in it.
    identity = err.identity;
    seen = { ...ctx, metadata: absentRepository(ctx.metadata) };
  }
  return handler(seen, {
    request,
    reply,
    name: match.name ?? '',
    reference: match.reference ?? '',
    identity,
    store: ctx.storage.blobStore(identity.did),
    query: stringQuery(request.query),
  });
}

/** Each query key's first value, as a string (the pages read queries the same way). */
export function stringQuery(query: unknown): Record<string, string | undefined> {
  const result: Record<string, string | undefined> = {};
  for (const [key, value] of Object.entries((query ?? {}) as Record<string, unknown>)) {
    result[key] = Array.isArray(value) ? String(value[0]) : typeof value === 'string' ? value : undefined;
  }
  return result;
}

/** The one place an error becomes an OCI error body. */
export function sendRegistryError(error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const ociError = asRegistryError(error);
  if (ociError.status >= 500) request.log.error({ err: error }, 'request failed');
  else request.log.info({ code: ociError.code }, 'request refused');
  for (const [name, value] of Object.entries(ociError.headers)) reply.header(name, value);
  if (reply.sent || reply.raw.headersSent) return reply;
  return reply.code(ociError.status).type('application/json').send(ociError.toJSON());
}

/** A domain, driver or framework error as the OCI error the API answers with; the web pages map errors the same way. */
export function asRegistryError(error: unknown): RegistryError {
  if (error instanceof RegistryError) return error;
  if (error instanceof BlobUnavailableError) return new RegistryError('UNAVAILABLE', error.message, { headers: { 'retry-after': '1' }, cause: error });
  if (error instanceof MissingBlobError) return new RegistryError('MANIFEST_BLOB_UNKNOWN', error.message, { detail: { digest: error.digest }, cause: error });
  if (error instanceof ImmutableTagError) return new RegistryError('DENIED', error.message, { detail: { tag: error.tag, digest: error.digest }, cause: error });
  if (error instanceof TagLimitError) return new RegistryError('DENIED', error.message, { detail: { limit: error.limit }, cause: error });
  if (error instanceof DriverError) {
    const headers = error.code === 'BUSY' ? { 'retry-after': BUSY_RETRY_AFTER_SECONDS } : undefined;
    return new RegistryError(DRIVER_TO_OCI[error.code], error.code === 'INTERNAL' ? undefined : error.message, { cause: error, headers });
  }
  const status = (error as { statusCode?: number }).statusCode;
  if (status === 413) return new RegistryError('SIZE_INVALID', 'the request body is too large');
  if (status !== undefined && status >= 400 && status < 500) return new RegistryError('UNSUPPORTED', (error as Error).message);
  return new RegistryError('INTERNAL');
}
