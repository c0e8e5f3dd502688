/**
 * Where a service's Prometheus `/metrics` answers, and to whom. Request
 * counts and stored bytes say who uses a registry and how; they are an
 * operator's, not a tenant's, so the public port never serves them to a
 * caller without the metrics secret.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

const metricsFields = z
  .object({
    listen: z
      .object({
        host: z.string().min(1).describe('The address the metrics server listens on.'),
        port: z.number().int().min(0).max(65535).describe('Its port; 0 picks a free one.'),
      })
      .strict()
      .optional()
      .describe('A second address that serves `/metrics` alone (for example 127.0.0.1:9090, for a scraper on the same host or network). While set, the main port does not serve `/metrics`.'),
    bearerToken: z.string().min(16).optional().describe('A secret a scraper sends as `Authorization: Bearer …`; set it from the environment or `bearerTokenFile`.'),
    bearerTokenFile: z.string().min(1).optional().describe('A file holding `bearerToken`.'),
    perUserLabels: z.boolean().default(false).describe('Whether series may carry a user label (the DID in `holdfast_stored_bytes`). Off, they give totals only.'),
  })
  .strict();

const WHERE = 'Prometheus `/metrics`: on `listen`, or on the main port to a scraper with `bearerToken`.';

export const registryMetricsSchema = metricsFields.prefault({}).describe(`${WHERE} With neither, only a loopback-only registry without authentication serves it (docs/SECURITY.md).`);

/** The hold has no per-user series, so no `perUserLabels`. */
export const holdMetricsSchema = metricsFields.omit({ perUserLabels: true }).prefault({}).describe(`${WHERE} With neither, the hold does not serve it (docs/SECURITY.md).`);

export type MetricsConfig = Omit<z.output<typeof metricsFields>, 'perUserLabels'>;

export type MetricsAccess = 'open' | 'secret' | 'off';

/**
 * What the main port does with `/metrics`: `open` serves anyone (only for a
 * service that is loopback-only and unauthenticated anyway), `secret` wants
 * the bearer secret, `off` answers as for any unknown path.
 */
export function mainPortAccess(config: MetricsConfig, secret: Buffer | undefined, openByDefault: boolean): MetricsAccess {
  if (config.listen) return 'off';
  if (secret) return 'secret';
  return openByDefault ? 'open' : 'off';
}

/** The secret's digest, read from the config or its file (relative to `baseDir`); undefined when none is set. */
export async function loadMetricsSecret(config: MetricsConfig, baseDir = process.cwd()): Promise<Buffer | undefined> {
  if (config.bearerToken !== undefined && config.bearerTokenFile !== undefined) throw new Error('metrics: set bearerToken or bearerTokenFile, not both');
  const token = config.bearerToken ?? (config.bearerTokenFile === undefined ? undefined : (await readFile(path.resolve(baseDir, config.bearerTokenFile), 'utf8')).trim());
  if (token === undefined) return undefined;
  if (token.length < 16) throw new Error('metrics: the bearer token must be at least 16 characters');
  return digest(token);
}

/** Whether an `Authorization` header carries the secret; compared as digests, in constant time. */
export function presentsSecret(header: string | undefined, secret: Buffer): boolean {
  const token = /^Bearer (\S+)$/.exec(header ?? '')?.[1];
  return token !== undefined && timingSafeEqual(digest(token), secret);
}

/** `GET /metrics` on a service's main port, as `access` says; `off` registers nothing, so the path is unknown there. */
export function metricsRoute(app: FastifyInstance, access: MetricsAccess, secret: Buffer | undefined, render: () => Promise<{ contentType: string; body: string }>): void {
  if (access === 'off') return;
  app.get('/metrics', async (request, reply) => {
    if (access === 'secret' && !(secret && presentsSecret(request.headers.authorization, secret))) {
      return reply.code(401).header('www-authenticate', 'Bearer realm="metrics"').type('text/plain').send('metrics need the bearer secret\n');
    }
    const { contentType, body } = await render();
    return reply.type(contentType).send(body);
  });
}

/**
 * The `metrics.listen` server: GET /metrics and nothing else, with the
 * secret when one is set. Plain node:http with short timeouts: a scraper
 * sends no body and waits for one page.
 */
export async function listenForMetrics(
  listen: { host: string; port: number },
  secret: Buffer | undefined,
  render: () => Promise<{ contentType: string; body: string }>,
): Promise<{ address: string; close(): Promise<void> }> {
  const server: Server = createServer((request, response) => {
    const path = (request.url ?? '').split('?')[0];
    if (path !== '/metrics' || (request.method !== 'GET' && request.method !== 'HEAD')) {
      response.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
      return;
    }
    if (secret && !presentsSecret(request.headers.authorization, secret)) {
      response.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer realm="metrics"' }).end('metrics need the bearer secret\n');
      return;
    }
    render().then(
      ({ contentType, body }) => response.writeHead(200, { 'content-type': contentType }).end(request.method === 'HEAD' ? undefined : body),
      () => response.writeHead(500, { 'content-type': 'text/plain' }).end('metrics failed\n'),
    );
  });
  server.requestTimeout = 10_000;
  server.headersTimeout = 5_000;
  server.keepAliveTimeout = 5_000;
  server.maxHeadersCount = 32;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const bound = server.address();
  const port = typeof bound === 'object' && bound ? bound.port : listen.port;
  return {
    address: `http://${listen.host.includes(':') ? `[${listen.host}]` : listen.host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token).digest();
}
