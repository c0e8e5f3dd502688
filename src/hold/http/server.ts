import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import { DEFAULT_SERVER_TIMEOUTS, fastifyTimeouts, watchClients, type ServerTimeouts } from '../../core/http-limits.ts';
import { requestSerializers } from '../../core/logger.ts';
import { healthAnswer } from '../../core/instance.ts';
import type { ServiceTokenVerifier } from '../auth/tokens.ts';
import { HoldError } from '../errors.ts';
import type { FsBackend } from '../backends/fs.ts';
import type { HoldMetrics } from '../metrics.ts';
import { metricsRoute, type MetricsAccess } from '../../core/metrics-endpoint.ts';
import type { HoldService } from '../service.ts';
import { sendHoldError } from './errors.ts';
import { registerFsRoutes } from './fs-routes.ts';
import { HOLD_ROUTES, type HoldHandler } from './routes.ts';
import { HOLD_ENDPOINTS, parseHoldRequest, type HoldEndpointName } from '../../protocol/hold-api.ts';

export interface HoldAppOptions {
  service: HoldService;
  verifier: ServiceTokenVerifier;
  metrics: HoldMetrics;
  logger: Logger;
  /** Set when the backend is the filesystem: the hold serves its signed URLs. */
  fsBackend?: FsBackend;
  timeouts?: ServerTimeouts;
  /** Who may read `/metrics` on this port; the hold authenticates every caller, so never `open`. */
  metricsAccess: { access: MetricsAccess; secret?: Buffer };
}

const JSON_BODY_LIMIT = 4 * 1024 * 1024;

export function buildHoldApp(options: HoldAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger.child({ component: 'hold' }, { serializers: requestSerializers }) as FastifyBaseLogger,
    bodyLimit: JSON_BODY_LIMIT,
    genReqId: (request) => {
      const given = request.headers['x-request-id'];
      return typeof given === 'string' && /^[\w.-]{1,128}$/.test(given) ? given : randomUUID();
    },
    return503OnClosing: true,
    ...fastifyTimeouts(options.timeouts ?? DEFAULT_SERVER_TIMEOUTS),
  });

  // The API speaks JSON only; a text body is a 415, not a schema error.
  watchClients(app, options.timeouts ?? DEFAULT_SERVER_TIMEOUTS);
  app.removeContentTypeParser('text/plain');
  app.setErrorHandler((error, request, reply) => sendHoldError(error, request, reply));
  app.setNotFoundHandler((request, reply) => sendHoldError(new HoldError('NOT_FOUND'), request, reply));
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id);
  });
  app.addHook('onResponse', async (request, reply) => {
    const endpoint = request.routeOptions.url ?? 'unmatched';
    options.metrics.requests.inc({ endpoint, method: request.method, status: String(reply.statusCode) });
  });

  app.get('/healthz', async () => healthAnswer('hold'));
  metricsRoute(app, options.metricsAccess.access, options.metricsAccess.secret, async () => ({ contentType: options.metrics.registry.contentType, body: await options.metrics.registry.metrics() }));

  const register = <K extends HoldEndpointName>(endpoint: K) => {
    const { path, acceptsQuery } = HOLD_ENDPOINTS[endpoint];
    const handler: HoldHandler<K> = HOLD_ROUTES[endpoint];
    app.post(path, async (request) => {
      const caller = await options.verifier.verify(request.headers.authorization);
      const raw = acceptsQuery ? { ...queryFields(request.query), ...bodyObject(request.body) } : request.body;
      const parsed = parseHoldRequest(endpoint, raw);
      if (!parsed.success) throw new HoldError('INVALID_REQUEST', describeIssues(parsed.error.issues));
      if (parsed.data.did !== caller.did) {
        throw new HoldError('DENIED', 'the body did must equal the service token subject');
      }
      return handler(options.service, caller.did, parsed.data, caller.claimant);
    });
    app.route({
      method: ['GET', 'PUT', 'DELETE', 'PATCH'],
      url: path,
      handler: async () => {
        throw new HoldError('METHOD_NOT_ALLOWED', `${path} accepts POST only`);
      },
    });
  };
  for (const endpoint of Object.keys(HOLD_ROUTES) as HoldEndpointName[]) register(endpoint);

  if (options.fsBackend) registerFsRoutes(app, options.fsBackend);
  return app;
}

function bodyObject(body: unknown): Record<string, unknown> {
  return body && typeof body === 'object' && !Array.isArray(body) ? (body as Record<string, unknown>) : {};
}

/** `/move?from=&to=&did=` as in the seed; a numeric `size` is converted. */
function queryFields(query: unknown): Record<string, unknown> {
  const fields: Record<string, unknown> = { ...bodyObject(query) };
  if (typeof fields.size === 'string' && /^\d+$/.test(fields.size)) fields.size = Number(fields.size);
  return fields;
}

function describeIssues(issues: readonly { path: PropertyKey[]; message: string }[]): string {
  return issues
    .slice(0, 5)
    .map((issue) => `${issue.path.length ? issue.path.map(String).join('.') : 'body'}: ${issue.message}`)
    .join('; ');
}
