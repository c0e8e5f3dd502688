/**
 * Closed-loop load over keep-alive connections: each of `connections` loops
 * sends its next request when the last one has answered.
 *
 * node:http with keep-alive: autocannon and wrk hang on a HEAD response with
 * a Content-Length (their parsers wait for a body), and undici closes the
 * connection after every HEAD; real clients do neither.
 */
import http from 'node:http';

export interface LoadRequest {
  method: string;
  url: URL;
  headers?: Record<string, string>;
  body?: Buffer;
}

export interface LoadFigures {
  requests: number;
  rps: number;
  /** Answers with another status than expected, and failed requests. */
  unexpected: number;
  p50: number;
  p99: number;
  /** The first unexpected answer, to say what went wrong. */
  firstUnexpected?: string;
}

/** One request on a keep-alive agent; resolves to the status (and the start of the body) once the response has ended. */
function send(agent: http.Agent, request: LoadRequest): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const headers = { ...request.headers, ...(request.body ? { 'content-length': String(request.body.length) } : {}) };
    const req = http.request(request.url, { agent, method: request.method, headers }, (response) => {
      let text = '';
      response.on('data', (chunk: Buffer) => {
        if (text.length < 300) text += chunk.toString();
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, text }));
      response.on('error', reject);
    });
    req.on('error', reject);
    req.end(request.body);
  });
}

/**
 * Runs `next(i)` (the i-th request, counted over every connection) in
 * `connections` closed loops: the first `warmup` requests are not timed; then
 * either `requests` are timed in all, or requests are sent for `seconds`.
 */
export async function closedLoop(
  next: (i: number) => LoadRequest,
  options: { expected: number; connections: number; warmup?: number } & ({ requests: number } | { seconds: number }),
): Promise<LoadFigures> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: options.connections });
  const latencies: number[] = [];
  let unexpected = 0;
  let firstUnexpected: string | undefined;
  const warmup = options.warmup ?? 0;
  let issued = 0;
  let began = performance.now();
  const deadline = () => ('seconds' in options ? began + options.seconds * 1000 : Number.POSITIVE_INFINITY);
  const limit = 'requests' in options ? warmup + options.requests : Number.POSITIVE_INFINITY;
  const loop = async () => {
    while (issued < limit && performance.now() < deadline()) {
      const index = issued++;
      if (index === warmup) began = performance.now();
      const sent = performance.now();
      try {
        const answer = await send(agent, next(index));
        if (answer.status === options.expected) {
          if (index >= warmup) latencies.push(performance.now() - sent);
        } else {
          unexpected++;
          firstUnexpected ??= `${answer.status} ${answer.text.slice(0, 200)}`;
        }
      } catch (err) {
        unexpected++;
        firstUnexpected ??= String(err);
      }
    }
  };
  await Promise.all(Array.from({ length: options.connections }, loop));
  const elapsed = (performance.now() - began) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const percentile = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))] ?? Number.NaN;
  return { requests: latencies.length, rps: latencies.length / elapsed, unexpected, p50: percentile(0.5), p99: percentile(0.99), ...(firstUnexpected ? { firstUnexpected } : {}) };
}
