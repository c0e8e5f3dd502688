import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * A round-robin HTTP load balancer for system tests, the way production puts
 * one in front of several registries or several holds: every request (not
 * every connection) goes to the next instance, so the PATCHes of one upload
 * alternate and no session is sticky.
 *
 * Like nginx's `proxy_next_upstream error`, a request whose connection to an
 * instance is refused goes to the next one (nothing was sent yet, so this is
 * safe for any method), and that instance is skipped for `downMs`. An
 * instance that dies mid-request gets the client a 502 (or a reset, once the
 * answer had begun): the client decides whether to repeat the request.
 *
 * Request bodies are streamed, never buffered; keep-alive connections to the
 * instances are pooled per instance.
 */
export interface BalancedRequest {
  method: string;
  /** The path without its query string. */
  path: string;
  backend: number;
  startedAt: number;
}

export interface RoundRobinProxy {
  url: string;
  /** Requests forwarded to each instance so far. */
  readonly forwarded: number[];
  /** Requests refused by one instance and sent to the next. */
  readonly failedOver: number;
  /** Answers of 502 because an instance failed mid-request. */
  readonly badGateway: number;
  /** Requests that an instance is working on right now. */
  inFlight(backend?: number): BalancedRequest[];
  close(): Promise<void>;
}

export interface RoundRobinOptions {
  /** How long an instance that refused a connection is skipped (default 500 ms). */
  downMs?: number;
}

export async function startRoundRobinProxy(backends: readonly string[], options: RoundRobinOptions = {}): Promise<RoundRobinProxy> {
  if (backends.length === 0) throw new TypeError('a round-robin proxy needs at least one backend');
  const targets = backends.map((backend) => new URL(backend));
  const agents = targets.map(() => new http.Agent({ keepAlive: true, maxSockets: 256 }));
  const downUntil = targets.map(() => 0);
  const forwarded = targets.map(() => 0);
  const active = new Set<BalancedRequest>();
  const downMs = options.downMs ?? 500;
  let next = 0;
  let failedOver = 0;
  let badGateway = 0;

  /** The instances to try for one request, starting at the next in turn and skipping those marked down (unless all are). */
  const order = (): number[] => {
    const start = next++ % targets.length;
    const all = targets.map((_target, offset) => (start + offset) % targets.length);
    const up = all.filter((index) => (downUntil[index] ?? 0) <= Date.now());
    return up.length > 0 ? [...up, ...all.filter((index) => !up.includes(index))] : all;
  };

  const server = http.createServer((req, res) => {
    const candidates = order();
    const attempt = (position: number) => {
      const backend = candidates[position] as number;
      const target = targets[backend] as URL;
      const entry: BalancedRequest = { method: req.method ?? 'GET', path: (req.url ?? '/').split('?')[0] as string, backend, startedAt: Date.now() };
      let connected = false;
      const upstream = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers, agent: agents[backend] },
        (response) => {
          res.writeHead(response.statusCode ?? 502, response.headers);
          response.pipe(res);
          response.on('end', () => active.delete(entry));
          response.on('error', () => res.destroy());
        },
      );
      const begin = () => {
        connected = true;
        forwarded[backend] = (forwarded[backend] ?? 0) + 1;
        active.add(entry);
        req.pipe(upstream);
      };
      upstream.on('socket', (socket: Socket) => {
        if (socket.connecting) socket.once('connect', begin);
        else begin();
      });
      upstream.on('error', (err: NodeJS.ErrnoException) => {
        active.delete(entry);
        if (!connected && position + 1 < candidates.length) {
          // Refused before a byte was sent: mark it down and try the next instance.
          downUntil[backend] = Date.now() + downMs;
          failedOver++;
          return attempt(position + 1);
        }
        if (!connected) downUntil[backend] = Date.now() + downMs;
        if (res.headersSent) return res.destroy();
        badGateway++;
        req.resume();
        res.writeHead(502, { 'content-type': 'text/plain', connection: 'close' });
        res.end(`bad gateway: ${err.code ?? err.message}\n`);
      });
      res.on('close', () => {
        active.delete(entry);
        if (!res.writableFinished) upstream.destroy();
      });
    };
    attempt(0);
  });
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    forwarded,
    get failedOver() {
      return failedOver;
    },
    get badGateway() {
      return badGateway;
    },
    inFlight(backend) {
      return [...active].filter((entry) => backend === undefined || entry.backend === backend);
    },
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const agent of agents) agent.destroy();
    },
  };
}
