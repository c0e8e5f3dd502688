import { expect } from 'chai';
import net from 'node:net';
import type { HoldDriver } from '../../src/driver/index.ts';
import { MiB, randomBlob, sha256 } from '../support/bytes.ts';
import { OciTestClient } from '../support/oci-client.ts';
import { startTestRegistry, USERS, type TestRegistry } from '../support/registry-harness.ts';

const STALLS = 64;

/** A chunked PATCH that sends `bytes` and then nothing; resolves with the raw response (if any) when the socket closes. */
function stalledPatch(base: string, path: string, token: string, bytes: Buffer): { closed: Promise<string>; socket: net.Socket } {
  const url = new URL(base);
  const socket = net.connect(Number(url.port), url.hostname);
  let response = '';
  socket.on('data', (chunk: Buffer) => (response += chunk.toString('latin1')));
  socket.on('error', () => {});
  const closed = new Promise<string>((resolve) => socket.on('close', () => resolve(response)));
  socket.write(
    `PATCH ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `${bytes.length.toString(16)}\r\n`,
  );
  socket.write(bytes);
  socket.write('\r\n');
  return { closed, socket };
}

async function timed<T>(work: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const started = performance.now();
  const result = await work();
  return { ms: performance.now() - started, result };
}

async function push(client: OciTestClient, base: string, repo: string, blob: Buffer, chunk: number): Promise<number> {
  const location = await client.start(base, repo);
  for (let offset = 0; offset < blob.length; offset += chunk) {
    const response = await client.patch(base, repo, location, blob.subarray(offset, offset + chunk), offset);
    if (response.status !== 202) throw new Error(`PATCH: ${response.status} ${response.text}`);
  }
  return (await client.finish(base, repo, location, sha256(blob))).status;
}

describe('attack: one DID stalls 64 chunked PATCHes (tenant isolation)', function () {
  this.timeout(180_000);
  let registry: TestRegistry;
  const alice = new OciTestClient(USERS.alice);
  const bob = new OciTestClient(USERS.bob);

  before(async function () {
    // 8 part buffers in all, so 64 stalled requests could hold every one of them.
    registry = await startTestRegistry({
      backend: 's3',
      driver: { partSize: 5 * MiB, memoryBudget: 40 * MiB, bufferWaitMs: 2000 },
      limits: { http: { idleTimeoutSeconds: 6, headersTimeoutSeconds: 2 } },
    });
  });
  after(async function () {
    await registry?.close();
  });

  it("another DID's 1 KiB PATCH and 32 MiB push finish in under 2 s each; the stalled uploads are cut and resume byte-exact", async function () {
    const base = registry.url;
    const token = await registry.token('alice', 'repository:alice/stall:pull,push');
    const locations = await Promise.all(Array.from({ length: STALLS }, () => alice.start(base, 'alice/stall')));
    const contents = locations.map(() => Buffer.concat([Buffer.from('AB'), randomBlob(100)]));
    const stalls = locations.map((location, index) => stalledPatch(base, location, token, (contents[index] as Buffer).subarray(0, 2)));

    const driver = registry.registry.storage as HoldDriver;
    const share = driver.config.memoryPerDid;
    const filled = Date.now();
    while (driver.budget.usedBy(USERS.alice.did) < share && Date.now() - filled < 5000) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(driver.budget.usedBy(USERS.alice.did), "the stalled PATCHes hold their DID's whole share").to.be.at.least(share);

    // The attacker's own next write is refused with a clear 429, not a two-minute wait.
    const own = await timed(() => push(alice, base, 'alice/stall', randomBlob(1024), 1024).catch((err: Error) => err.message));
    expect(own.result, String(own.result)).to.match(/^PATCH: 429 .*TOOMANYREQUESTS/);
    expect(own.ms).to.be.below(5000);

    const small = await timed(async () => {
      const location = await bob.start(base, 'bob/victim');
      return bob.patch(base, 'bob/victim', location, randomBlob(1024), 0);
    });
    expect(small.result.status).to.equal(202);
    const large = await timed(() => push(bob, base, 'bob/victim', randomBlob(32 * MiB), 32 * MiB));
    expect(large.result).to.equal(201);
    console.log(`      victim: 1 KiB PATCH ${small.ms.toFixed(0)} ms, 32 MiB push ${large.ms.toFixed(0)} ms, under ${STALLS} stalled PATCHes`);
    expect(small.ms, '1 KiB PATCH').to.be.below(2000);
    expect(large.ms, '32 MiB push').to.be.below(2000);

    // The idle timeout cuts every stalled body; what arrived stays durable.
    const cut = await timed(() => Promise.all(stalls.map((stall) => stall.closed)));
    expect(cut.ms, 'stalled sockets are closed by the idle timeout').to.be.below(15_000);
    for (const [index, location] of locations.entries()) {
      const content = contents[index] as Buffer;
      const offset = await alice.offset(base, 'alice/stall', location);
      expect([0, 2], 'durable offset after the cut').to.include(offset);
      const rest = await alice.patch(base, 'alice/stall', location, content.subarray(offset), offset);
      expect(rest.status, rest.text).to.equal(202);
      const finished = await alice.finish(base, 'alice/stall', location, sha256(content));
      expect(finished.status, finished.text).to.equal(201);
      expect((await alice.fetchBlob(base, 'alice/stall', sha256(content))).equals(content)).to.equal(true);
    }
    expect(driver.budget.usedBy(USERS.alice.did)).to.equal(0);
  });

  it('closes a connection whose headers never finish', async function () {
    const url = new URL(registry.url);
    const socket = net.connect(Number(url.port), url.hostname);
    socket.on('error', () => {});
    socket.resume();
    socket.write(`GET /v2/ HTTP/1.1\r\nHost: ${url.host}\r\nX-Slow: `);
    const { ms } = await timed(() => new Promise((resolve) => socket.on('close', resolve)));
    expect(ms).to.be.below(5000);
  });
});
