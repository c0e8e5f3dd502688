import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { RegistryError } from '../errors.ts';

/**
 * With authentication off, the registry trusts whoever can reach its loopback
 * address. A web page in the user's browser can reach it too: cross-site
 * (a "simple" POST needs no preflight) or by DNS rebinding (a name the page
 * controls that resolves to 127.0.0.1, sent as `Host`). So only loopback
 * `Host` values on our own port are served, and requests a browser marks as
 * coming from another site are refused. OCI clients send neither header.
 */
export function refuseNonLoopbackCallers(app: FastifyInstance): void {
  app.addHook('onRequest', async (request) => {
    const port = (app.server.address() as AddressInfo | null)?.port;
    const reason = port === undefined ? 'the listening port is unknown' : refusal(request.headers, port);
    if (!reason) return;
    request.log.warn(
      { reason, host: clip(request.headers.host), origin: clip(request.headers.origin), secFetchSite: clip(request.headers['sec-fetch-site']) },
      'refused a request a web page could have sent (authentication is off)',
    );
    throw new RegistryError('DENIED', `${reason}; with authentication off this registry only serves clients on this machine`);
  });
}

export function refusal(headers: IncomingHttpHeaders, port: number): string | undefined {
  const host = headers.host;
  if (!host || !isLoopbackAuthority(host, port)) return `Host "${clip(host) ?? ''}" is not a loopback address on port ${port}`;
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `a ${site} request (Sec-Fetch-Site)`;
  const origin = headers.origin;
  if (origin !== undefined && !isLoopbackOrigin(origin, port)) return `Origin "${clip(origin)}" is another site`;
  return undefined;
}

function isLoopbackOrigin(origin: string, port: number): boolean {
  try {
    const url = new URL(origin);
    return url.protocol === 'http:' && isLoopbackAuthority(url.host, port);
  } catch {
    return false;
  }
}

/** `localhost`, `127.x.y.z` or `[::1]`, with our port (or none when it is 80). */
function isLoopbackAuthority(authority: string, port: number): boolean {
  const match = /^(\[::1\]|localhost|127\.\d{1,3}\.\d{1,3}\.\d{1,3})(?::(\d{1,5}))?$/i.exec(authority);
  if (!match) return false;
  const given = match[2] === undefined ? 80 : Number(match[2]);
  return given === port;
}

function clip(value: string | string[] | undefined): string | undefined {
  const text = Array.isArray(value) ? value.join(',') : value;
  return text === undefined ? undefined : text.slice(0, 200);
}
