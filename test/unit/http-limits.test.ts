import { expect } from 'chai';
import Fastify, { type FastifyInstance } from 'fastify';
import net from 'node:net';
import { fastifyTimeouts, serverTimeoutsSchema, watchClients } from '../../src/core/http-limits.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Sends a chunked request with `chunks` spaced by `gapMs`; resolves with the status line, or 'cut' if the server closed first. */
async function send(port: number, path: string, chunks: number, gapMs: number, chunkBytes = 1): Promise<string> {
  const socket = net.connect(port, '127.0.0.1');
  socket.on('error', () => {});
  let response = '';
  socket.on('data', (chunk: Buffer) => (response += chunk.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n`);
  for (let index = 0; index < chunks && !socket.destroyed; index++) {
    socket.write(`${chunkBytes.toString(16)}\r\n${'x'.repeat(chunkBytes)}\r\n`);
    await sleep(gapMs);
  }
  if (!socket.destroyed) socket.write('0\r\n\r\n');
  await closed;
  return response ? (response.split('\r\n')[0] as string) : 'cut';
}

describe('server timeouts blame the client, never the server', function () {
  this.timeout(30_000);
  let app: FastifyInstance;
  let port: number;
  const serverSockets = new Set<net.Socket>();

  before(async function () {
    const timeouts = serverTimeoutsSchema.parse({ idleTimeoutSeconds: 1, minBodyBytesPerSecond: 100, headersTimeoutSeconds: 2 });
    app = Fastify({ ...fastifyTimeouts(timeouts), bodyLimit: 1 });
    app.removeAllContentTypeParsers();
    app.addContentTypeParser('*', (_request, _payload, done) => done(null));
    watchClients(app, timeouts);
    app.post('/read', async (request) => {
      let bytes = 0;
      for await (const chunk of request.raw) bytes += (chunk as Buffer).length;
      return { bytes };
    });
    app.post('/read-then-work', async (request) => {
      for await (const _chunk of request.raw) {
        // read everything first
      }
      await sleep(2500);
      return { ok: true };
    });
    app.post('/slow-reader', async (request) => {
      // The server is behind: it reads nothing for 2.5 s while the client has more to send.
      await sleep(2500);
      let bytes = 0;
      for await (const chunk of request.raw) bytes += (chunk as Buffer).length;
      return { bytes };
    });
    app.post('/refuse', async (request, reply) => {
      serverSockets.add(request.raw.socket);
      return reply.code(416).send({ refused: true });
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    port = (app.server.address() as net.AddressInfo).port;
  });
  after(async function () {
    await app?.close();
  });

  it('cuts a body that stops sending', async function () {
    expect(await send(port, '/read', 1, 3000)).to.equal('cut');
  });

  it('cuts a body that trickles below the minimum rate', async function () {
    expect(await send(port, '/read', 12, 250)).to.equal('cut');
  });

  it('lets a steady body through', async function () {
    expect(await send(port, '/read', 10, 100, 200)).to.equal('HTTP/1.1 200 OK');
  });

  it('never cuts a request while the server works on it after the body', async function () {
    expect(await send(port, '/read-then-work', 1, 0)).to.equal('HTTP/1.1 200 OK');
  });

  it('keeps no watch per request on a keep-alive connection whose requests are answered before their bodies', async function () {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    let answers = 0;
    socket.on('data', (chunk: Buffer) => (answers += chunk.toString('latin1').split('HTTP/1.1 416').length - 1));
    for (let index = 0; index < 30; index++) {
      const seen = answers;
      socket.write('POST /refuse HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 10\r\n\r\n');
      while (answers === seen) await sleep(5);
      socket.write('0123456789');
    }
    await sleep(50);
    const [server] = serverSockets;
    expect(serverSockets.size, 'one connection').to.equal(1);
    expect(server?.listenerCount('close'), 'close listeners on the server side of the connection').to.be.below(8);
    socket.destroy();
  });

  it('never cuts a client while the server is the one not reading', async function () {
    expect(await send(port, '/slow-reader', 4, 0, 64 * 1024)).to.equal('HTTP/1.1 200 OK');
  });
});
