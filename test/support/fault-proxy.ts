import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A small HTTP proxy for fault injection between the driver and storage. It
 * forwards requests unchanged (the Host header too, so presigned signatures
 * stay valid) unless the plan says otherwise. Every fault is bounded in time.
 */
export type Fault =
  | { kind: 'pass' }
  | { kind: 'slowdown' }
  | { kind: 'reset' }
  /** Never answers; the socket is destroyed after `ms` (past the client's timeout). */
  | { kind: 'stall'; ms: number }
  /** Forwards after `ms` (long enough for a presigned URL to expire). */
  | { kind: 'delay'; ms: number }
  /** Forwards, and closes the client's socket when the answer comes: the work was done, the answer lost. */
  | { kind: 'answer-lost' };

export interface ProxiedRequest {
  method: string;
  path: string;
  index: number;
}

export interface FaultProxy {
  url: string;
  /** Every request seen, with the fault applied to it. */
  log: { request: ProxiedRequest; fault: Fault['kind'] }[];
  close(): Promise<void>;
}

export async function startFaultProxy(target: string | (() => string), plan: (request: ProxiedRequest) => Fault): Promise<FaultProxy> {
  const log: FaultProxy['log'] = [];
  const timers = new Set<NodeJS.Timeout>();
  let index = 0;
  const server = http.createServer((req, res) => {
    const request = { method: req.method ?? 'GET', path: req.url ?? '/', index: index++ };
    const fault = plan(request);
    log.push({ request, fault: fault.kind });
    const forward = (options: { loseAnswer?: boolean } = {}) => {
      const upstream = new URL(typeof target === 'string' ? target : target());
      const proxied = http.request(
        { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers },
        (response) => {
          if (options.loseAnswer) {
            response.resume();
            response.on('end', () => req.socket.destroy());
            return;
          }
          res.writeHead(response.statusCode ?? 502, response.headers);
          response.pipe(res);
        },
      );
      proxied.on('error', () => res.destroy());
      req.pipe(proxied);
    };
    switch (fault.kind) {
      case 'pass':
        return forward();
      case 'answer-lost':
        return forward({ loseAnswer: true });
      case 'slowdown':
        req.resume();
        req.on('end', () => {
          res.writeHead(503, { 'content-type': 'application/xml' });
          res.end('<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>');
        });
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'stall': {
        req.resume();
        const timer = setTimeout(() => req.socket.destroy(), fault.ms);
        timers.add(timer);
        return;
      }
      case 'delay': {
        req.pause();
        const timer = setTimeout(() => forward(), fault.ms);
        timers.add(timer);
        return;
      }
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    log,
    async close() {
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
