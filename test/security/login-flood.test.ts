import { expect } from 'chai';
import { spawn } from 'node:child_process';
import { request } from 'undici';
import { startTestRegistry, USERS, type TestRegistry } from '../support/registry-harness.ts';

const FLOOD = 64;

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

async function login(base: string, authorization: string): Promise<{ status: number; ms: number; retryAfter?: string }> {
  const started = performance.now();
  const response = await request(`${base}/auth/token?service=holdfast-test&scope=repository:alice/app:pull`, { headers: { authorization } });
  await response.body.dump();
  return { status: response.statusCode, ms: performance.now() - started, retryAfter: response.headers['retry-after'] as string | undefined };
}

async function latency(url: string, headers: Record<string, string> = {}): Promise<number> {
  const started = performance.now();
  const response = await request(url, { headers });
  await response.body.dump();
  if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode}`);
  return performance.now() - started;
}

// The attacker is another process, as it would be another machine: its own
// event loop does not slow the registry's in this test.
const FLOOD_SCRIPT = `
const http = require('node:http');
const [base, concurrency, ms, alice] = process.argv.slice(1);
const url = new URL(base);
const agent = new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) });
const statuses = {};
let sent = 0;
const until = Date.now() + Number(ms);
function one(index) {
  if (Date.now() >= until) return Promise.resolve();
  const user = index % 2 ? alice : 'nobody' + index;
  const auth = 'Basic ' + Buffer.from(user + ':wrong-' + sent++).toString('base64');
  return new Promise((resolve) => {
    const req = http.get({ host: url.hostname, port: url.port, agent, path: '/auth/token?service=holdfast-test&scope=repository:alice/app:pull', headers: { authorization: auth } }, (res) => {
      statuses[res.statusCode] = (statuses[res.statusCode] || 0) + 1;
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', () => { statuses.error = (statuses.error || 0) + 1; resolve(); });
  }).then(() => one(index));
}
Promise.all(Array.from({ length: Number(concurrency) }, (_, index) => one(index))).then(() => {
  process.stdout.write(JSON.stringify(statuses));
  agent.destroy();
});
`;

function flood(base: string, concurrency: number, ms: number): Promise<Record<string, number>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', FLOOD_SCRIPT, base, String(concurrency), String(ms), USERS.alice.username], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(output) as Record<string, number>) : reject(new Error(`flood exited ${code}`))));
  });
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] as number;
}

function median(values: number[]): number {
  return percentile(values, 50);
}

describe('attack: a flood of wrong passwords (Basic auth)', function () {
  this.timeout(120_000);

  describe('64 concurrent wrong passwords', function () {
    let registry: TestRegistry;

    before(async function () {
      // bcrypt at cost 10, as `holdfast hash-password` makes them.
      registry = await startTestRegistry({ backend: 'fs', passwordRounds: 10 });
    });
    after(async function () {
      await registry?.close();
    });

    it('keep /healthz and an authenticated pull under 100 ms at p99, and get 401 or 429', async function () {
      const token = await registry.token('alice', 'repository:alice/app:pull');
      const pull = `${registry.url}/v2/alice/app/tags/list`;
      const warm = await request(pull, { headers: { authorization: `Bearer ${token}` } });
      await warm.body.dump();
      const samples: { health: number[]; pull: number[] } = { health: [], pull: [] };
      let flooding = true;
      const sampler = (async () => {
        while (flooding) {
          samples.health.push(await latency(`${registry.url}/healthz`));
          const started = performance.now();
          const response = await request(pull, { headers: { authorization: `Bearer ${token}` } });
          await response.body.dump();
          expect([200, 404]).to.include(response.statusCode);
          samples.pull.push(performance.now() - started);
          await new Promise((resolve) => setTimeout(resolve, 10));
        }
      })();
      const statuses = await flood(registry.url, FLOOD, 2000);
      flooding = false;
      await sampler;
      console.log(
        `      ${FLOOD} concurrent wrong logins for 2 s: ${JSON.stringify(statuses)}; /healthz p99 ${percentile(samples.health, 99).toFixed(1)} ms, ` +
          `pull p99 ${percentile(samples.pull, 99).toFixed(1)} ms over ${samples.health.length} samples; slowest pulls ${[...samples.pull].sort((a, b) => b - a).slice(0, 4).map((v) => v.toFixed(0)).join(",")}`,
      );
      expect(Object.keys(statuses).every((status) => status === '401' || status === '429'), JSON.stringify(statuses)).to.equal(true);
      expect(statuses['429'], 'the flood is throttled').to.be.above(0);
      expect(samples.health.length).to.be.at.least(10);
      expect(percentile(samples.health, 99), '/healthz p99').to.be.below(100);
      expect(percentile(samples.pull, 99), 'authenticated pull p99').to.be.below(100);
    });

    it('refuses more failures from one address with 429 and Retry-After, but lets a password that already worked in', async function () {
      // Whatever the flood above managed on a slow machine, ten more failures are over the limit.
      for (let attempt = 0; attempt < 10; attempt++) await login(registry.url, basic(`nobody${attempt}`, 'wrong'));
      const refused = await login(registry.url, basic(USERS.bob.username, 'wrong'));
      expect(refused.status).to.equal(429);
      expect(Number(refused.retryAfter)).to.be.above(0);
      // alice's correct password was checked before the flood (the token above): still accepted.
      expect((await login(registry.url, basic(USERS.alice.username, USERS.alice.password))).status).to.equal(200);
    });
  });

  describe('timing of known and unknown user names', function () {
    let registry: TestRegistry;

    before(async function () {
      registry = await startTestRegistry({ backend: 'fs', passwordRounds: 8, login: { failuresPerAddress: 1000, failuresPerUser: 1000 } });
    });
    after(async function () {
      await registry?.close();
    });

    it('answers a wrong password as slowly for an unknown user as for a real one', async function () {
      const known: number[] = [];
      const unknown: number[] = [];
      for (let round = 0; round < 15; round++) {
        const a = await login(registry.url, basic(USERS.alice.username, `wrong-${round}`));
        const b = await login(registry.url, basic(`ghost${round}`, `wrong-${round}`));
        expect([a.status, b.status]).to.deep.equal([401, 401]);
        known.push(a.ms);
        unknown.push(b.ms);
      }
      const [k, u] = [median(known), median(unknown)];
      console.log(`      wrong password, median: known user ${k.toFixed(1)} ms, unknown user ${u.toFixed(1)} ms`);
      expect(Math.abs(k - u) / Math.max(k, u), 'relative difference of the medians').to.be.below(0.25);
      // The sample tells them apart only if one side's fastest is slower than the other's median.
      expect(Math.min(...unknown)).to.be.below(k);
      expect(Math.min(...known)).to.be.below(u);
    });
  });
});
