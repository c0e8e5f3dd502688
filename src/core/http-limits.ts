import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';

/**
 * Timeouts every Holdfast HTTP server applies, so a client that opens a
 * request and never finishes it holds a socket (and what the request
 * reserved) for a bounded time. They bound what the *client* does; work the
 * server does itself (a commit that re-hashes a blob, a copy) is never cut.
 */
export const serverTimeoutsSchema = z
  .object({
    idleTimeoutSeconds: z
      .number()
      .int()
      .min(1)
      .max(3600)
      .default(60)
      .describe(
        'A request body that delivers less than `minBodyBytesPerSecond` on average over this long, while the server waits for it, is cut; so is a response the client stops reading for this long.',
      ),
    minBodyBytesPerSecond: z.number().int().min(0).default(500).describe('See `idleTimeoutSeconds`; 0 cuts only bodies that send nothing at all.'),
    requestTimeoutSeconds: z.number().int().min(0).default(0).describe('The most a whole request (headers and body) may take; 0 leaves it to the rules above.'),
    headersTimeoutSeconds: z.number().int().min(1).max(300).default(20).describe('The most the request headers may take to arrive.'),
    keepAliveSeconds: z.number().int().min(1).max(3600).default(72).describe("An idle keep-alive connection is closed after this; keep it above your load balancer's idle timeout."),
  })
  .strict();

export type ServerTimeouts = z.output<typeof serverTimeoutsSchema>;

export const DEFAULT_SERVER_TIMEOUTS: ServerTimeouts = Object.freeze(serverTimeoutsSchema.parse({}));

/** Fastify options for the timeouts `node:http` enforces itself; pair with `watchClients`. */
export function fastifyTimeouts(timeouts: ServerTimeouts) {
  const headersTimeout = timeouts.headersTimeoutSeconds * 1000;
  const requestTimeout = timeouts.requestTimeoutSeconds * 1000;
  return {
    // No socket inactivity timer: it would also fire while a handler works. `watchClients` replaces it.
    connectionTimeout: 0,
    requestTimeout,
    keepAliveTimeout: timeouts.keepAliveSeconds * 1000,
    http: {
      // node:http checks the header and request timeouts on this interval (30 s by default).
      connectionsCheckingInterval: Math.max(250, Math.min(headersTimeout, requestTimeout || headersTimeout) / 4),
      headersTimeout: requestTimeout > 0 ? Math.min(headersTimeout, requestTimeout) : headersTimeout,
    },
  };
}

/**
 * Cuts request bodies that stall or trickle, and responses the client stops
 * reading: the parts of a request where the client, not the server, is slow.
 */
export function watchClients(app: FastifyInstance, timeouts: ServerTimeouts): void {
  const idleMs = timeouts.idleTimeoutSeconds * 1000;
  // Callback hooks, not async ones: they run on every request.
  app.addHook('onRequest', (request, _reply, done) => {
    watchBody(request.raw, idleMs, timeouts.minBodyBytesPerSecond);
    done();
  });
  app.addHook('onSend', (request, reply, payload, done) => {
    watchResponse(request.raw, reply.raw.socket, idleMs);
    done(null, payload);
  });
}

/**
 * False for a request that carries no body (no Content-Length, or 0, and no
 * Transfer-Encoding): node:http marks even those `complete` only once they
 * are read, so `complete` alone would watch every GET and HEAD.
 */
function hasBody(raw: IncomingMessage): boolean {
  const length = raw.headers['content-length'];
  return raw.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function watchResponse(raw: IncomingMessage, socket: Socket | null, idleMs: number): void {
  // The request may already have let go of its socket (its body stream was destroyed); the response has not.
  if (!socket) return;
  socket.setTimeout(idleMs);
  if (raw.complete || !hasBody(raw)) return;
  // Answered before the whole body arrived (an error, a 429): node:http
  // reads and drops the rest on the same connection, so a client that
  // never sends it is cut after the idle timeout, not the keep-alive one.
  // The watch ends with the body or the connection, whichever comes first:
  // a keep-alive connection carries many such requests.
  const timer = setTimeout(() => {
    stop();
    if (!raw.complete) socket.destroy();
  }, idleMs);
  timer.unref();
  const stop = () => {
    clearTimeout(timer);
    raw.off('end', stop);
    socket.off('close', stop);
  };
  raw.once('end', stop);
  socket.once('close', stop);
}

/**
 * Samples the socket's byte count while the body is being read. Time only
 * counts while the server is waiting for the client (nothing is buffered
 * unread); while the server itself is behind (waiting for memory or for
 * storage), the client cannot send and is not blamed.
 */
function watchBody(raw: IncomingMessage, idleMs: number, minBytesPerSecond: number): void {
  const socket = raw.socket;
  if (raw.complete || !socket || !hasBody(raw)) return;
  const tickMs = Math.max(50, Math.min(5000, Math.floor(idleMs / 4)));
  const needed = Math.max(1, (minBytesPerSecond * idleMs) / 1000);
  let last = socket.bytesRead;
  let waited = 0;
  let received = 0;
  const timer = setInterval(() => {
    const now = socket.bytesRead;
    const delta = now - last;
    last = now;
    if (raw.readableLength > 0) {
      waited = 0;
      received = 0;
      return;
    }
    waited += tickMs;
    received += delta;
    if (waited < idleMs) return;
    if (received < needed) {
      stop();
      socket.destroy();
      return;
    }
    waited = 0;
    received = 0;
  }, tickMs);
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    raw.off('end', stop);
    raw.off('close', stop);
    socket.off('close', stop);
  };
  raw.once('end', stop);
  raw.once('close', stop);
  socket.once('close', stop);
}
