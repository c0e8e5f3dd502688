import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * An S3 proxy in front of MinIO for one hold's own (control-plane) calls, so
 * a test can freeze that hold in the middle of an operation: `hold(match)`
 * lets the next matching request reach S3 and keeps its answer back from the
 * hold. The write has happened, the hold is still waiting for it, and a
 * SIGKILL now kills the operation exactly there. Everything else passes
 * through unchanged (the Host header too, so signatures stay valid).
 */
/** Which requests to hold back: the method, the path and the query string's parameters. */
export type RequestMatch = (method: string, path: string, query: URLSearchParams) => boolean;

export interface HeldRequest {
  method: string;
  path: string;
  /** S3's status for the request whose answer is held back. */
  status: number;
}

export interface S3Gate {
  url: string;
  /**
   * Holds back the answer of the next request that `match`es; resolves once
   * S3 has answered it (the effect is in the bucket) and the hold is waiting.
   */
  hold(match: RequestMatch): Promise<HeldRequest>;
  /** Forgets every `hold` not yet matched and lets held answers through (to a hold still alive). */
  releaseAll(): void;
  close(): Promise<void>;
}

export async function startS3Gate(target: string): Promise<S3Gate> {
  const upstream = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 128 });
  const traps: { match: RequestMatch; resolve: (held: HeldRequest) => void }[] = [];
  const held: (() => void)[] = [];

  const server = http.createServer((req, res) => {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'http://gate');
    const path = url.pathname;
    const trapIndex = traps.findIndex((trap) => trap.match(method, path, url.searchParams));
    const trap = trapIndex >= 0 ? traps.splice(trapIndex, 1)[0] : undefined;
    const proxied = http.request({ host: upstream.hostname, port: upstream.port, method, path: req.url, headers: req.headers, agent }, (response) => {
      const deliver = () => {
        if (res.destroyed) return response.resume();
        res.writeHead(response.statusCode ?? 502, response.headers);
        response.pipe(res);
      };
      if (!trap) return deliver();
      response.pause();
      held.push(deliver);
      trap.resolve({ method, path, status: response.statusCode ?? 0 });
    });
    proxied.on('error', () => res.destroy());
    res.on('close', () => {
      if (!res.writableFinished) proxied.destroy();
    });
    req.pipe(proxied);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    hold(match) {
      return new Promise((resolve) => traps.push({ match, resolve }));
    },
    releaseAll() {
      traps.length = 0;
      for (const deliver of held.splice(0)) deliver();
    },
    async close() {
      traps.length = 0;
      held.length = 0;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      agent.destroy();
    },
  };
}
