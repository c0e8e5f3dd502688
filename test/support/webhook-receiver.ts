import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedDelivery {
  id: string;
  timestamp: string;
  signature: string;
  contentType: string;
  body: string;
  event: { id: string; type: string; subject?: string; source: string; time: string; specversion: string; data: Record<string, unknown> };
  /** The status this receiver answered. */
  status: number;
}

/**
 * A real HTTP receiver on 127.0.0.1 for webhook tests: it records every
 * request and answers as its mode says: 200, 503, or never (a hung
 * receiver: the request stays open until the receiver closes).
 */
export class WebhookReceiver {
  readonly deliveries: ReceivedDelivery[] = [];
  mode: 'ok' | 'fail' | 'hang' = 'ok';
  /** In mode `ok`, deliveries this says yes to are answered 500 (a receiver that chokes on some events). */
  refuse: ((event: ReceivedDelivery['event']) => boolean) | undefined;
  #server: http.Server;
  #waiters: { predicate: () => boolean; resolve: () => void }[] = [];
  readonly #hung = new Set<http.ServerResponse>();

  private constructor(server: http.Server) {
    this.#server = server;
  }

  static async start(): Promise<WebhookReceiver> {
    const server = http.createServer();
    const receiver = new WebhookReceiver(server);
    server.on('request', (request, response) => receiver.#handle(request, response));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.#server.address() as AddressInfo).port}/hook?token=query-secret`;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** The deliveries answered 2xx, in arrival order. */
  get accepted(): ReceivedDelivery[] {
    return this.deliveries.filter((delivery) => delivery.status >= 200 && delivery.status < 300);
  }

  /** Resolves once `predicate` holds (checked after each request), or rejects after `timeoutMs`. */
  until(predicate: () => boolean, timeoutMs = 20_000): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`webhook receiver: condition not met in ${timeoutMs} ms (${this.deliveries.length} requests so far)`)), timeoutMs);
      this.#waiters.push({ predicate, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  async close(): Promise<void> {
    for (const response of this.#hung) response.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #handle(request: http.IncomingMessage, response: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const event = JSON.parse(body) as ReceivedDelivery['event'];
      const status = this.mode === 'ok' ? (this.refuse?.(event) ? 500 : 200) : this.mode === 'fail' ? 503 : 0;
      this.deliveries.push({
        id: String(request.headers['webhook-id']),
        timestamp: String(request.headers['webhook-timestamp']),
        signature: String(request.headers['webhook-signature']),
        contentType: String(request.headers['content-type']),
        body,
        event,
        status,
      });
      if (status === 0) this.#hung.add(response);
      else response.writeHead(status).end();
      this.#waiters = this.#waiters.filter((waiter) => (waiter.predicate() ? (waiter.resolve(), false) : true));
    });
  }
}
