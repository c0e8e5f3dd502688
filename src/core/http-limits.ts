import { z } from 'zod';

/**
 * Timeouts every Holdfast HTTP server applies, so a client that opens a
 * request and never finishes it holds a socket for a bounded time.
 */
export const serverTimeoutsSchema = z
  .object({
    /** A connection with no bytes in either direction for this long is closed, mid-body too. */
    idleTimeoutSeconds: z.number().int().min(1).max(3600).default(60),
    /** The most a whole request (headers and body) may take; 0 turns it off. */
    requestTimeoutSeconds: z.number().int().min(0).default(3600),
    /** The most the request headers may take to arrive. */
    headersTimeoutSeconds: z.number().int().min(1).max(300).default(20),
  })
  .strict();

export type ServerTimeouts = z.output<typeof serverTimeoutsSchema>;

export const DEFAULT_SERVER_TIMEOUTS: ServerTimeouts = Object.freeze(serverTimeoutsSchema.parse({}));

/** Fastify options that apply `timeouts` to its `node:http` server. */
export function fastifyTimeouts(timeouts: ServerTimeouts) {
  const headersTimeout = timeouts.headersTimeoutSeconds * 1000;
  const requestTimeout = timeouts.requestTimeoutSeconds * 1000;
  return {
    connectionTimeout: timeouts.idleTimeoutSeconds * 1000,
    requestTimeout,
    // Shorter than the idle timeout, so an idle keep-alive socket is closed
    // between requests rather than under a request just sent.
    keepAliveTimeout: Math.min(5000, timeouts.idleTimeoutSeconds * 1000 - 500),
    http: {
      // node:http checks the header and request timeouts on this interval (30 s by default).
      connectionsCheckingInterval: Math.max(250, Math.min(headersTimeout, requestTimeout || headersTimeout) / 4),
      headersTimeout: requestTimeout > 0 ? Math.min(headersTimeout, requestTimeout) : headersTimeout,
    },
  };
}
