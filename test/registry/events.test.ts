import { expect } from 'chai';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pino from 'pino';
import { request } from 'undici';
import { freePort } from '../../src/core/net.ts';
import { openDatabase } from '../../src/metadata/db.ts';
import { EventOutbox } from '../../src/metadata/events/outbox.ts';
import { parseRegistryConfig } from '../../src/registry/config.ts';
import { Registry } from '../../src/registry/registry.ts';
import { AUDIENCE, DIDS, ISSUER, startTestHold, type TestHold } from '../support/hold-harness.ts';
import { verifyDelivery } from '../../src/registry/events/signature.ts';
import { sha256 } from '../support/bytes.ts';
import { OciTestClient } from '../support/oci-client.ts';
import { USERS, startTestRegistry, type TestRegistry } from '../support/registry-harness.ts';
import { WebhookReceiver } from '../support/webhook-receiver.ts';
import { exposeGc } from '../support/expose-gc.ts';
import { METRICS_HEADERS, TEST_METRICS_TOKEN } from '../support/hold-metrics.ts';
import { cliNodeArgs } from '../support/stack.ts';
import { spawnSync } from 'node:child_process';
import { writeFile } from 'node:fs/promises';

const SECRET = 'a-webhook-secret-of-at-least-32-characters';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

function eventsConfig(receiver: WebhookReceiver, extra: Record<string, unknown> = {}) {
  return {
    endpoints: [{ name: 'hooks', url: receiver.url, secret: SECRET, events: ['manifest.pushed', 'manifest.deleted', 'tag.deleted', 'quota.exceeded', 'gc.completed'] }],
    allowedNetworks: ['127.0.0.0/8'],
    pollMilliseconds: 100,
    ...extra,
  };
}

/** Pushes a config and a layer once per repository, then manifests that differ by an annotation. */
class Pusher {
  readonly client: OciTestClient;

  constructor(user: { username: string; password: string } = USERS.alice) {
    this.client = new OciTestClient(user);
  }

  readonly #blobs = new Map<string, { config: { digest: string; size: number }; layer: { digest: string; size: number } }>();

  async manifest(base: string, repo: string, tag: string | undefined, note: string): Promise<{ status: number; digest: string; text: string }> {
    let blobs = this.#blobs.get(repo);
    if (!blobs) {
      const config = randomBytes(64);
      const layer = randomBytes(200);
      await this.client.pushBlob(base, repo, config);
      await this.client.pushBlob(base, repo, layer);
      blobs = { config: { digest: sha256(config), size: config.length }, layer: { digest: sha256(layer), size: layer.length } };
      this.#blobs.set(repo, blobs);
    }
    const body = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...blobs.config },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...blobs.layer }],
        annotations: { note },
      }),
    );
    const digest = sha256(body);
    const put = await this.client.call(base, repo, 'PUT', `/v2/${repo}/manifests/${tag ?? digest}`, { body, headers: { 'content-type': OCI_MANIFEST } });
    return { status: put.status, digest, text: put.text };
  }
}

async function withDelete(registry: TestRegistry, repo: string, path: string): Promise<number> {
  const token = await registry.token('alice', `repository:${repo}:pull,push,delete`);
  const response = await request(`${registry.url}${path}`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } });
  await response.body.dump();
  return response.statusCode;
}

describe('events: webhooks from the outbox', function () {
  this.timeout(180_000);

  describe('signed CloudEvents for what changed, and nothing for what did not (SQLite)', function () {
    let receiver: WebhookReceiver;
    let registry: TestRegistry;
    const pusher = new Pusher();

    before(async function () {
      receiver = await WebhookReceiver.start();
      registry = await startTestRegistry({
        backend: 'fs',
        events: eventsConfig(receiver),
        policies: { immutableTags: [{ repositories: 'alice/frozen', tags: ['v*'] }] },
      });
    });
    after(async function () {
      await registry?.close();
      await receiver?.close();
    });

    it('delivers a push as a CloudEvent whose signature verifies, and whose replay a receiver can detect', async function () {
      const pushed = await pusher.manifest(registry.url, 'alice/app', 'v1', 'one');
      expect(pushed.status, pushed.text).to.equal(201);
      await receiver.until(() => receiver.accepted.length >= 1);
      const [delivery] = receiver.accepted;
      expect(delivery?.contentType).to.equal('application/cloudevents+json; charset=utf-8');
      expect(delivery?.event).to.include({ specversion: '1.0', type: 'dev.holdfast.manifest.pushed', subject: 'alice/app:v1', source: registry.url });
      expect(delivery?.event.id).to.equal(delivery?.id);
      expect(delivery?.event.data).to.deep.include({ repository: 'alice/app', tag: 'v1', digest: pushed.digest, mediaType: OCI_MANIFEST, actor: 'alice', reason: 'api' });
      const headers = { id: delivery?.id as string, timestamp: delivery?.timestamp as string, signature: delivery?.signature as string };
      expect(verifyDelivery(SECRET, headers, delivery?.body as string)).to.equal(true);
      // Tampered, under another secret, or replayed ten minutes later: refused.
      expect(verifyDelivery(SECRET, headers, (delivery?.body as string).replace('alice/app', 'alice/evil'))).to.equal(false);
      expect(verifyDelivery('another-secret-of-at-least-32-characters!', headers, delivery?.body as string)).to.equal(false);
      expect(verifyDelivery(SECRET, headers, delivery?.body as string, Number(headers.timestamp) + 600)).to.equal(false);
      // The query string of the URL (it may hold a secret) is not in the outbox's errors or the event.
      expect(delivery?.body).not.to.include('query-secret');
    });

    it('reports tag and manifest deletes, and nothing for a push or delete that was refused', async function () {
      const first = await pusher.manifest(registry.url, 'alice/frozen', 'v1', 'frozen-1');
      expect(first.status, first.text).to.equal(201);
      await receiver.until(() => receiver.accepted.some((delivery) => delivery.event.subject === 'alice/frozen:v1'));
      const before = receiver.accepted.length;
      // An immutable tag refuses the move inside the transaction that would have queued the event.
      const moved = await pusher.manifest(registry.url, 'alice/frozen', 'v1', 'frozen-2');
      expect(moved.status, moved.text).to.equal(403);
      expect(await withDelete(registry, 'alice/frozen', `/v2/alice/frozen/manifests/${first.digest}`)).to.equal(403);
      // A manifest naming a blob that is not there is refused before anything is stored.
      const missing = await pusher.client.call(registry.url, 'alice/app', 'PUT', '/v2/alice/app/manifests/broken', {
        body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(randomBytes(8)), size: 8 }, layers: [] })),
        headers: { 'content-type': OCI_MANIFEST },
      });
      expect(missing.status).to.equal(400);

      const tagged = await pusher.manifest(registry.url, 'alice/app', 'to-untag', 'two');
      expect(await withDelete(registry, 'alice/app', '/v2/alice/app/manifests/to-untag')).to.equal(202);
      const doomed = await pusher.manifest(registry.url, 'alice/app', 'doomed', 'three');
      expect(await withDelete(registry, 'alice/app', `/v2/alice/app/manifests/${doomed.digest}`)).to.equal(202);
      await receiver.until(() => receiver.accepted.length >= before + 4);
      await registry.registry.events?.dispatcher.settle();
      const events = receiver.accepted.slice(before).map((delivery) => [delivery.event.type, delivery.event.subject]);
      expect(events).to.deep.equal([
        ['dev.holdfast.manifest.pushed', 'alice/app:to-untag'],
        ['dev.holdfast.tag.deleted', 'alice/app:to-untag'],
        ['dev.holdfast.manifest.pushed', 'alice/app:doomed'],
        ['dev.holdfast.manifest.deleted', `alice/app@${doomed.digest}`],
      ]);
      expect(receiver.accepted.at(-1)?.event.data).to.deep.include({ tags: ['doomed'] });
      expect(receiver.accepted.slice(before)[1]?.event.data).to.deep.include({ tag: 'to-untag', digest: tagged.digest });
      // Nothing about the refused move, the refused delete or the broken manifest, then or later.
      expect(receiver.deliveries.filter((delivery) => delivery.event.subject?.startsWith('alice/frozen')).length).to.equal(1);
      expect(receiver.deliveries.some((delivery) => delivery.event.subject === 'alice/app:broken')).to.equal(false);
    });

    it('keeps an event a few KiB whatever the manifest carries (a megabyte-long artifactType)', async function () {
      const blobs = randomBytes(32);
      await pusher.client.pushBlob(registry.url, 'alice/huge', blobs);
      const artifactType = `application/vnd.${'x'.repeat(100_000)}`;
      const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, artifactType, config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(blobs), size: blobs.length }, layers: [] }));
      const put = await pusher.client.call(registry.url, 'alice/huge', 'PUT', '/v2/alice/huge/manifests/big', { body, headers: { 'content-type': OCI_MANIFEST } });
      expect(put.status, put.text).to.equal(201);
      await receiver.until(() => receiver.accepted.some((delivery) => delivery.event.subject === 'alice/huge:big'));
      const delivery = receiver.accepted.find((candidate) => candidate.event.subject === 'alice/huge:big');
      expect(delivery?.event.data).to.deep.include({ omitted: ['artifactType'], repository: 'alice/huge' });
      expect(delivery?.body.length).to.be.below(2048);
    });

    it('lists dead events and redelivers them under the same id', async function () {
      const events = registry.registry.events;
      if (!events) throw new Error('events are configured');
      receiver.mode = 'fail';
      // One attempt, then dead: the outbox keeps it for `holdfast events redeliver`.
      const outbox = events.outbox;
      const pushed = await pusher.manifest(registry.url, 'alice/dead', 'v1', 'dead');
      expect(pushed.status).to.equal(201);
      await receiver.until(() => receiver.deliveries.some((delivery) => delivery.event.subject === 'alice/dead:v1'));
      await events.dispatcher.settle();
      const [row] = await outbox.list({ endpoint: 'hooks', limit: 1 });
      expect(row).to.include({ repository: 'alice/dead', state: 'pending', attempts: 1, lastError: 'HTTP 503' });
      // Make it dead by hand (as 20 failures would) and requeue it.
      await outbox.failed(row?.seq as number, Date.now(), { nextAt: Date.now(), dead: true, error: 'HTTP 503' });
      expect((await outbox.list({ state: 'dead', limit: 10 })).map((dead) => dead.id)).to.deep.equal([row?.id]);
      receiver.mode = 'ok';
      expect(await outbox.redeliver({ deadOf: 'hooks' })).to.equal(1);
      events.dispatcher.nudge();
      await receiver.until(() => receiver.accepted.some((delivery) => delivery.id === row?.id));
      expect(receiver.deliveries.filter((delivery) => delivery.id === row?.id).length).to.equal(2);
    });

    it('keeps delivering other repositories while one repository\'s event keeps failing with 3,000 queued behind it', async function () {
      const events = registry.registry.events;
      if (!events) throw new Error('events are configured');
      receiver.refuse = (event) => event.subject?.startsWith('bulk/poison') === true;
      const db = await openDatabase({ kind: 'sqlite', path: registry.databasePath as string });
      try {
        const entries = Array.from({ length: 3000 }, (_, n) => ({
          id: `poison-${n}`,
          endpoint: 'hooks',
          lane: 'bulk/poison',
          repository: 'bulk/poison',
          namespace: 'bulk',
          type: 'manifest.pushed',
          body: JSON.stringify({ specversion: '1.0', id: `poison-${n}`, source: 'test', type: 'dev.holdfast.manifest.pushed', subject: 'bulk/poison', data: { n } }),
        }));
        await db.transaction((tx) => EventOutbox.append(tx, entries, { ordered: true }));
        events.dispatcher.nudge();
        await receiver.until(() => receiver.deliveries.some((delivery) => delivery.id === 'poison-0'));
        const pushed = await pusher.manifest(registry.url, 'alice/app', 'behind-poison', 'behind');
        expect(pushed.status).to.equal(201);
        await receiver.until(() => receiver.accepted.some((delivery) => delivery.event.subject === 'alice/app:behind-poison'), 10_000);
        // Only the poisoned repository's oldest event was tried.
        expect(new Set(receiver.deliveries.filter((delivery) => delivery.event.subject === 'bulk/poison').map((delivery) => delivery.id))).to.deep.equal(new Set(['poison-0']));
      } finally {
        receiver.refuse = undefined;
        await db.run("DELETE FROM event_outbox WHERE repository = 'bulk/poison'");
        await db.close();
      }
    });
  });

  describe('the outbox on its own (SQLite)', function () {
    it('prunes delivered and dead rows after their keep, and rows of endpoints that left the config', async function () {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-outbox-'));
      const db = await openDatabase({ kind: 'sqlite', path: path.join(dir, 'registry.db') });
      try {
        const outbox = new EventOutbox(db);
        const entry = (id: string, endpoint: string, repository = 'alice/app') => ({ id, endpoint, lane: repository, repository, namespace: 'alice', type: 'manifest.pushed', body: '{}' });
        await db.transaction((tx) => EventOutbox.append(tx, [entry('old-delivered', 'a'), entry('old-dead', 'a'), entry('gone', 'removed'), entry('pending', 'a', 'alice/other')], { ordered: true }));
        await db.transaction((tx) => EventOutbox.append(tx, [entry('new-delivered', 'a', 'alice/third'), entry('gone-new', 'removed', 'alice/third')], { ordered: true }));
        const seqOf = async (id: string) => (await outbox.list({ limit: 100 })).find((row) => row.id === id)?.seq as number;
        const now = Date.now();
        // Times in the outbox are the database's: queued rows carry its clock (SQLite's is this machine's).
        const [queued] = await outbox.list({ limit: 1 });
        expect(Math.abs((queued?.createdAt as number) - now)).to.be.below(5000);
        await outbox.delivered(await seqOf('old-delivered'), 2000);
        await outbox.failed(await seqOf('old-dead'), 2000, { nextAt: 2000, dead: true, error: 'HTTP 500' });
        await outbox.delivered(await seqOf('new-delivered'), now + 60_000);
        expect(await outbox.prune({ deliveredBefore: 10_000, keepDelivered: 100, deadBefore: 10_000, limit: 100 })).to.equal(2);
        expect(await outbox.pruneOrphans(['a'], now - 3_600_000, 100)).to.equal(0);
        expect(await outbox.pruneOrphans(['a'], now + 60_000, 100)).to.equal(2);
        expect((await outbox.list({ limit: 100 })).map((row) => row.id).sort()).to.deep.equal(['new-delivered', 'pending']);
        // A claim goes only to a lane's oldest pending row.
        const [pending] = await outbox.list({ state: 'pending', endpoint: 'a', limit: 1 });
        await db.transaction((tx) => EventOutbox.append(tx, [entry('younger', 'a', 'alice/other')], { ordered: true }));
        const younger = await seqOf('younger');
        expect(await outbox.claim([younger], 'me', now + 90_000, now + 60_000)).to.deep.equal([]);
        expect((await outbox.claim([pending?.seq as number, younger], 'me', now + 90_000, now + 60_000)).map((row) => row.id)).to.deep.equal(['pending']);
        expect(await outbox.due('a', now + 60_000, { want: 8, lanes: 8, after: '' })).to.deep.equal({ seqs: [], next: '' });
        // Delivered rows past the newest `keepDelivered` events go whatever their age.
        await outbox.delivered(pending?.seq as number, now + 60_000);
        expect(await outbox.prune({ deliveredBefore: 0, keepDelivered: 1, deadBefore: 0, limit: 100 })).to.equal(2);
        expect((await outbox.list({ limit: 100 })).map((row) => row.id)).to.deep.equal(['younger']);
      } finally {
        await db.close();
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('policies, pulls and the queue cap', function () {
    let receiver: WebhookReceiver;
    let registry: TestRegistry;

    before(async function () {
      receiver = await WebhookReceiver.start();
      registry = await startTestRegistry({
        backend: 'fs',
        metrics: { bearerToken: TEST_METRICS_TOKEN },
        policies: {
          namespaceQuotas: [{ namespaces: 'bob', limit: 300 }],
          retention: [{ repositories: 'alice/retained', keepLast: 1 }],
        },
        events: {
          ...eventsConfig(receiver),
          endpoints: [
            { name: 'hooks', url: receiver.url, secret: SECRET, events: ['manifest.pushed', 'manifest.deleted', 'tag.deleted', 'quota.exceeded', 'manifest.pulled'], repositories: ['alice/**', 'bob/**'] },
          ],
          pulls: { sampleRate: 1, maxPerSecond: 5 },
        },
      });
    });
    after(async function () {
      await registry?.close();
      await receiver?.close();
    });

    it('reports pulls (rate-limited), quota refusals (once a minute) and retention deletes', async function () {
      const pusher = new Pusher();
      const pushed = await pusher.manifest(registry.url, 'alice/pulled', 'v1', 'pulled');
      expect(pushed.status).to.equal(201);
      for (let i = 0; i < 20; i++) {
        const got = await pusher.client.call(registry.url, 'alice/pulled', 'GET', '/v2/alice/pulled/manifests/v1', { headers: { accept: OCI_MANIFEST } });
        expect(got.status).to.equal(200);
      }
      const bob = new Pusher(USERS.bob);
      for (let i = 0; i < 3; i++) {
        const refused = await bob.client.call(registry.url, 'bob/big', 'POST', `/v2/bob/big/blobs/uploads/?digest=${sha256(Buffer.alloc(400, i))}`, { body: Buffer.alloc(400, i), headers: { 'content-type': 'application/octet-stream' } });
        expect(refused.status, refused.text).to.equal(403);
      }
      for (const tag of ['a', 'b', 'c']) expect((await pusher.manifest(registry.url, 'alice/retained', tag, tag)).status).to.equal(201);
      const report = await registry.registry.retention.run();
      expect(report.deletedTags).to.equal(2);
      await registry.registry.events?.dispatcher.settle();
      await receiver.until(() => receiver.accepted.filter((delivery) => delivery.event.type === 'dev.holdfast.tag.deleted').length === 2);
      const ofType = (type: string) => receiver.accepted.filter((delivery) => delivery.event.type === `dev.holdfast.${type}`);
      const pulls = ofType('manifest.pulled');
      expect(pulls.length).to.be.within(5, 7);
      expect(pulls[0]?.event).to.deep.include({ subject: 'alice/pulled:v1' });
      expect(pulls[0]?.event.data).to.deep.include({ repository: 'alice/pulled', tag: 'v1', digest: pushed.digest, actor: 'alice' });
      const quota = ofType('quota.exceeded');
      expect(quota.length).to.equal(1);
      expect(quota[0]?.event.data).to.deep.include({ repository: 'bob/big', namespace: 'bob', limit: 300, used: 0, adding: 400, actor: 'bob' });
      const retained = ofType('tag.deleted').filter((delivery) => delivery.event.data.repository === 'alice/retained');
      expect(retained.map((delivery) => [delivery.event.data.tag, delivery.event.data.reason])).to.have.deep.members([
        ['a', 'retention'],
        ['b', 'retention'],
      ]);
    });

    it('drops what passes an endpoint\'s cap, counts it, and says so in /metrics', async function () {
      const capped = await startTestRegistry({
        backend: 'fs',
        metrics: { bearerToken: TEST_METRICS_TOKEN },
        events: { ...eventsConfig(receiver), endpoints: [{ name: 'tiny', url: receiver.url, secret: SECRET }], maxQueued: 3 },
      });
      try {
        receiver.mode = 'fail';
        const pusher = new Pusher();
        for (let i = 0; i < 6; i++) expect((await pusher.manifest(capped.url, 'alice/capped', `t${i}`, `c${i}`)).status).to.equal(201);
        const events = capped.registry.events;
        if (!events) throw new Error('events are configured');
        expect((await events.outbox.list({ endpoint: 'tiny', limit: 100 })).length).to.equal(3);
        const metrics = await (await request(`${capped.url}/metrics`, { headers: METRICS_HEADERS })).body.text();
        expect(metrics).to.include('holdfast_events_dropped_total{endpoint="tiny",reason="outbox_full"} 3');
        expect(metrics).to.include('holdfast_events_queued_total{endpoint="tiny",type="manifest.pushed"} 3');
        expect(metrics).to.match(/holdfast_events_failed_attempts_total\{endpoint="tiny"\} [1-9]/);
        expect(metrics).not.to.include('query-secret');
      } finally {
        receiver.mode = 'ok';
        await capped.close();
      }
    });

    it('lists and redelivers from the command line', async function () {
      const events = registry.registry.events;
      if (!events) throw new Error('events are configured');
      receiver.mode = 'fail';
      expect((await new Pusher().manifest(registry.url, 'alice/cli', 'v1', 'cli')).status).to.equal(201);
      await receiver.until(() => receiver.deliveries.some((delivery) => delivery.event.subject === 'alice/cli:v1'));
      await events.dispatcher.settle();
      receiver.mode = 'ok';
      const [row] = await events.outbox.list({ endpoint: 'hooks', limit: 1 });
      expect(row).to.include({ repository: 'alice/cli', state: 'pending' });
      await events.outbox.failed(row?.seq as number, Date.now(), { nextAt: Date.now(), dead: true, error: 'HTTP 503' });
      const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-events-cli-'));
      try {
        const file = path.join(dir, 'registry.yaml');
        await writeFile(file, JSON.stringify({ listen: { host: '127.0.0.1', port: 5000 }, storage: { module: 'hold', options: {} }, metadata: { kind: 'sqlite', path: registry.databasePath }, auth: { mode: 'none', did: DIDS.owner } }));
        const cli = (...args: string[]) => spawnSync(process.execPath, [...cliNodeArgs(path.resolve('src/cli/main.ts')), 'events', ...args, '--config', file], { encoding: 'utf8', timeout: 60_000 });
        const listed = cli('list', '--state', 'dead', '--body');
        expect(listed.status, listed.stderr).to.equal(0);
        const lines = listed.stdout.trim().split('\n').map((line) => JSON.parse(line) as { seq: number; id: string; state: string; lastError: string; event: { id: string } });
        expect(lines.map((line) => [line.seq, line.state, line.lastError, line.event.id])).to.deep.equal([[row?.seq, 'dead', 'HTTP 503', row?.id]]);
        expect(cli('list', '--state', 'lost').status).to.equal(2);
        expect(cli('redeliver').status).to.equal(2);
        const redelivered = cli('redeliver', String(row?.seq));
        expect(redelivered.status, redelivered.stderr).to.equal(0);
        expect(JSON.parse(redelivered.stdout)).to.deep.equal({ requeued: 1 });
        events.dispatcher.nudge();
        await receiver.until(() => receiver.accepted.some((delivery) => delivery.id === row?.id));
        await events.dispatcher.settle();
        const [again] = await events.outbox.list({ endpoint: 'hooks', limit: 1 });
        expect(again).to.include({ id: row?.id, state: 'delivered' });
        // Purge deletes dead events only.
        receiver.mode = 'fail';
        expect((await new Pusher().manifest(registry.url, 'alice/cli', 'v2', 'cli-2')).status).to.equal(201);
        await receiver.until(() => receiver.deliveries.some((delivery) => delivery.event.subject === 'alice/cli:v2'));
        await events.dispatcher.settle();
        receiver.mode = 'ok';
        const [second] = await events.outbox.list({ endpoint: 'hooks', limit: 1 });
        await events.outbox.failed(second?.seq as number, Date.now(), { nextAt: Date.now(), dead: true, error: 'HTTP 503' });
        const purged = cli('purge', '--dead');
        expect(purged.status, purged.stderr).to.equal(0);
        expect(JSON.parse(purged.stdout)).to.deep.equal({ purged: 1 });
        expect((await events.outbox.list({ endpoint: 'hooks', limit: 1 }))[0]?.id).to.equal(again?.id);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  });

  describe('a receiver down for five minutes (simulated time)', function () {
    let receiver: WebhookReceiver;
    let registry: TestRegistry;
    let offset = 0;
    const pusher = new Pusher();

    before(async function () {
      receiver = await WebhookReceiver.start();
      registry = await startTestRegistry({ backend: 'fs', events: eventsConfig(receiver), eventsFor: () => ({ now: () => Date.now() + offset }) });
    });
    after(async function () {
      await registry?.close();
      await receiver?.close();
    });

    it('retries each repository\'s next event with backoff, holds memory flat over a deep queue, then delivers everything in order per repository', async function () {
      const events = registry.registry.events;
      if (!events) throw new Error('events are configured');
      receiver.mode = 'fail';
      const pushed: { repo: string; note: string; digest: string }[] = [];
      for (let i = 0; i < 18; i++) {
        const repo = `alice/down-${i % 3}`;
        const result = await pusher.manifest(registry.url, repo, `t${i}`, `n${i}`);
        expect(result.status, result.text).to.equal(201);
        pushed.push({ repo, note: `n${i}`, digest: result.digest });
      }
      // And a deep queue besides: 5,000 events over 500 repositories, as a long outage would leave.
      const db = await openDatabase({ kind: 'sqlite', path: registry.databasePath as string });
      try {
        const body = (n: number, repo: string) => JSON.stringify({ specversion: '1.0', id: `bulk-${n}`, source: 'test', type: 'dev.holdfast.manifest.pushed', subject: repo, data: { n } });
        for (let batch = 0; batch < 10; batch++) {
          const entries = Array.from({ length: 500 }, (_, i) => {
            const n = batch * 500 + i;
            const repo = `bulk/r${n % 500}`;
            return { id: `bulk-${n}`, endpoint: 'hooks', lane: repo, repository: repo, namespace: 'bulk', type: 'manifest.pushed', body: body(n, repo) };
          });
          await db.transaction((tx) => EventOutbox.append(tx, entries, { ordered: true }));
        }
      } finally {
        await db.close();
      }
      const gc = exposeGc();
      await events.dispatcher.settle();
      gc();
      const heapBefore = process.memoryUsage().heapUsed;
      for (let elapsed = 0; elapsed < 300_000; elapsed += 5000) {
        offset += 5000;
        await events.dispatcher.settle();
      }
      gc();
      const heapGrowth = process.memoryUsage().heapUsed - heapBefore;
      // Only each repository's oldest event is tried (the passes read 2,048 rows deep, which holds every repository here), at 2, 4, 8 … s (±20 %): at most 9 tries each in five minutes.
      const tried = new Map<string, number>();
      for (const delivery of receiver.deliveries) tried.set(delivery.id, (tried.get(delivery.id) ?? 0) + 1);
      const heads = new Set(receiver.deliveries.map((delivery) => delivery.event.subject?.split(/[:@]/)[0]));
      expect(heads.size).to.equal(503);
      expect(tried.size).to.equal(heads.size);
      expect(receiver.deliveries.length).to.be.at.most(9 * heads.size);
      expect(Math.max(...tried.values())).to.be.at.most(9);
      expect(heapGrowth, `heap grew ${heapGrowth} bytes`).to.be.below(16 * 1024 * 1024);
      const [oldest] = await events.outbox.list({ endpoint: 'hooks', state: 'pending', limit: 1 });
      expect(oldest?.lastError).to.equal(undefined); // the newest queued were never tried: only heads are
      // The receiver is back: everything arrives, once each, in order per repository.
      receiver.mode = 'ok';
      for (let round = 0; round < 20 && receiver.accepted.length < 5018; round++) {
        offset += 600_000;
        await events.dispatcher.settle();
      }
      const accepted = receiver.accepted;
      expect(accepted.length).to.equal(5018);
      expect(new Set(accepted.map((delivery) => delivery.id)).size).to.equal(5018);
      for (const repo of ['alice/down-0', 'alice/down-1', 'alice/down-2']) {
        const received = accepted.filter((delivery) => delivery.event.subject?.startsWith(`${repo}:`)).map((delivery) => delivery.event.data.digest);
        expect(received).to.deep.equal(pushed.filter((push) => push.repo === repo).map((push) => push.digest));
      }
      for (let r = 0; r < 500; r += 97) {
        const received = accepted.filter((delivery) => delivery.event.subject === `bulk/r${r}`).map((delivery) => delivery.event.data.n);
        expect(received).to.deep.equal(Array.from({ length: 10 }, (_, batch) => batch * 500 + r));
      }
      expect(await events.outbox.list({ state: 'pending', limit: 1 })).to.deep.equal([]);
    });
  });

  describe('two instances on Postgres', function () {
    let receiver: WebhookReceiver;
    let registry: TestRegistry;
    const pusher = new Pusher();

    before(async function () {
      receiver = await WebhookReceiver.start();
      registry = await startTestRegistry({ backend: 'fs', metadata: 'postgres', instances: 2, events: eventsConfig(receiver) });
    });
    after(async function () {
      await registry?.close();
      await receiver?.close();
    });

    it('send each event once, under one id, in order per repository, whichever instance took the push', async function () {
      const pushed: { repo: string; digest: string }[] = [];
      for (let i = 0; i < 24; i++) {
        const repo = `alice/shared-${i % 4}`;
        const result = await pusher.manifest(registry.urls[i % 2] as string, repo, `t${i}`, `n${i}`);
        expect(result.status, result.text).to.equal(201);
        pushed.push({ repo, digest: result.digest });
      }
      await receiver.until(() => receiver.accepted.length >= 24);
      await Promise.all(registry.instances().map((instance) => instance.events?.dispatcher.settle()));
      expect(receiver.deliveries.length).to.equal(24);
      expect(new Set(receiver.deliveries.map((delivery) => delivery.id)).size).to.equal(24);
      for (let r = 0; r < 4; r++) {
        const repo = `alice/shared-${r}`;
        expect(receiver.accepted.filter((delivery) => delivery.event.subject?.startsWith(`${repo}:`)).map((delivery) => delivery.event.data.digest)).to.deep.equal(
          pushed.filter((push) => push.repo === repo).map((push) => push.digest),
        );
      }
    });

    it('take concurrent pushes into one repository (a multi-arch push) without a deadlock, and report each', async function () {
      const before = receiver.accepted.length;
      expect((await pusher.manifest(registry.url, 'alice/multi', 'base', 'base')).status).to.equal(201);
      for (let round = 0; round < 10; round++) {
        const results = await Promise.all([0, 1, 2, 3].map((k) => pusher.manifest(registry.urls[k % 2] as string, 'alice/multi', k % 2 === 0 ? `r${round}-${k}` : undefined, `m${round}-${k}`)));
        for (const result of results) expect(result.status, result.text).to.equal(201);
      }
      await receiver.until(() => receiver.accepted.length >= before + 41);
      await Promise.all(registry.instances().map((instance) => instance.events?.dispatcher.settle()));
      const multi = receiver.accepted.slice(before).filter((delivery) => delivery.event.data.repository === 'alice/multi');
      expect(multi.length).to.equal(41);
      expect(new Set(multi.map((delivery) => delivery.id)).size).to.equal(41);
    });
  });

  describe('SSRF: endpoints that reach inside', function () {
    let receiver: WebhookReceiver;

    before(async function () {
      receiver = await WebhookReceiver.start();
    });
    after(async function () {
      await receiver?.close();
    });

    const openRegistry = async (url: string, allowedNetworks: string[] = []) => {
      const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-ssrf-'));
      try {
        const config = parseRegistryConfig({
          listen: { host: '127.0.0.1', port: await freePort() },
          storage: { module: 'hold', options: {} },
          metadata: { kind: 'sqlite', path: path.join(dir, 'registry.db') },
          auth: { mode: 'none', did: DIDS.owner },
          events: { endpoints: [{ name: 'inside', url, secret: SECRET }], allowedNetworks },
        });
        const registry = await Registry.create(config, { logger: pino({ level: 'silent' }), storage: { blobStore: () => { throw new Error('not used'); }, close: async () => {} } });
        await registry.close();
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    };

    it('refuses at start an endpoint on a loopback, private, link-local or metadata address, or a name resolving to one', async function () {
      for (const [url, reason] of [
        [`http://127.0.0.1:${receiver.port}/`, 'loopback'],
        [`http://localhost:${receiver.port}/`, 'loopback'],
        ['http://169.254.169.254/latest/meta-data/', 'cloud metadata'],
        ['http://10.1.2.3/', 'private'],
        ['http://[::ffff:127.0.0.1]/', 'loopback'],
      ] as const) {
        let error: Error | undefined;
        await openRegistry(url).catch((err: Error) => (error = err));
        expect(error?.message, url).to.include(reason);
        expect(error?.message).to.include('events.endpoints.0.url');
      }
      await openRegistry(`http://127.0.0.1:${receiver.port}/`, ['127.0.0.0/8']);
      expect(receiver.deliveries.length).to.equal(0);
    });

    it('refuses at delivery a name that resolved to a public address at start and to 127.0.0.1 now (DNS rebinding)', async function () {
      let lookups = 0;
      const registry = await startTestRegistry({
        backend: 'fs',
        events: { endpoints: [{ name: 'rebinding', url: `http://hooks.test:${receiver.port}/`, secret: SECRET }], pollMilliseconds: 100 },
        eventsFor: () => ({ resolver: async () => (lookups++ === 0 ? [{ address: '93.184.216.34', family: 4 }] : [{ address: '127.0.0.1', family: 4 }]) }),
      });
      try {
        const pushed = await new Pusher().manifest(registry.url, 'alice/app', 'v1', 'rebind');
        expect(pushed.status, pushed.text).to.equal(201);
        const events = registry.registry.events;
        if (!events) throw new Error('events are configured');
        let row;
        for (let i = 0; i < 100 && !row?.lastError; i++) {
          await events.dispatcher.settle();
          [row] = await events.outbox.list({ limit: 1 });
          if (!row?.lastError) await new Promise((resolve) => setTimeout(resolve, 50));
        }
        expect(row?.lastError).to.include('resolves to 127.0.0.1 (loopback)');
        expect(lookups).to.be.at.least(2);
        expect(receiver.deliveries.length).to.equal(0);
      } finally {
        await registry.close();
      }
    });
  });

  describe('a receiver that never answers', function () {
    it('holds only its own share of the deliveries: another endpoint keeps getting every event', async function () {
      const hung = await WebhookReceiver.start();
      const healthy = await WebhookReceiver.start();
      hung.mode = 'hang';
      const registry = await startTestRegistry({
        backend: 'fs',
        events: {
          endpoints: [
            { name: 'hung', url: hung.url, secret: SECRET },
            { name: 'healthy', url: healthy.url, secret: SECRET },
          ],
          allowedNetworks: ['127.0.0.0/8'],
          pollMilliseconds: 100,
          concurrency: 2,
          timeoutSeconds: 5,
        },
      });
      try {
        const pusher = new Pusher();
        for (let i = 0; i < 10; i++) expect((await pusher.manifest(registry.url, `alice/hung-${i % 5}`, `t${i}`, `h${i}`)).status).to.equal(201);
        await healthy.until(() => healthy.accepted.length === 10, 4000);
        expect(hung.deliveries.length).to.be.at.most(1);
      } finally {
        await registry.close();
        await hung.close();
        await healthy.close();
      }
    });
  });

  describe('a registry SIGKILLed in the middle of a delivery', function () {
    let receiver: WebhookReceiver;
    let hold: TestHold;
    let dir: string;
    let child: ChildProcess | undefined;

    before(async function () {
      receiver = await WebhookReceiver.start();
      hold = await startTestHold('fs', { config: { publicRead: true } });
      dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-kill-'));
    });
    after(async function () {
      child?.kill('SIGKILL');
      await hold?.close();
      await receiver?.close();
      await rm(dir, { recursive: true, force: true });
    });

    it('redelivers under the same id after a restart, with nothing lost and nothing invented', async function () {
      const port = await freePort();
      const base = `http://127.0.0.1:${port}`;
      const config = {
        listen: { host: '127.0.0.1', port },
        storage: { module: 'hold', options: { hold: { url: hold.url, audience: AUDIENCE }, issuer: ISSUER, privateKey: hold.keys.privateKey } },
        blobs: { delivery: 'proxy' },
        metadata: { kind: 'sqlite', path: path.join(dir, 'registry.db') },
        auth: { mode: 'none', did: DIDS.owner },
        policies: { immutableTags: [{ repositories: 'alice/app', tags: ['v*'] }] },
        events: { ...eventsConfig(receiver), timeoutSeconds: 1 },
      };
      const startChild = async () => {
        const started = spawn(process.execPath, ['--import', 'tsx', path.resolve('test/support/registry-child.ts')], { stdio: ['pipe', 'pipe', 'inherit'] });
        started.stdin.end(JSON.stringify(config));
        await new Promise<void>((resolve, reject) => {
          started.stdout.on('data', (chunk: Buffer) => chunk.toString().includes('ready') && resolve());
          started.on('exit', (code) => reject(new Error(`registry child exited with ${code}`)));
        });
        return started;
      };
      const put = async (pathname: string, body: Buffer, contentType: string) => {
        const response = await request(`${base}${pathname}`, { method: 'PUT', body, headers: { 'content-type': contentType } });
        await response.body.dump();
        return response.statusCode;
      };
      const pushImage = async (tag: string, note: string) => {
        const config = randomBytes(32);
        for (const blob of [config]) {
          const response = await request(`${base}/v2/alice/app/blobs/uploads/?digest=${sha256(blob)}`, { method: 'POST', body: blob, headers: { 'content-type': 'application/octet-stream' } });
          await response.body.dump();
          expect(response.statusCode).to.equal(201);
        }
        const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length }, layers: [], annotations: { note } }));
        return { status: await put(`/v2/alice/app/manifests/${tag}`, manifest, OCI_MANIFEST), digest: sha256(manifest) };
      };

      receiver.mode = 'hang';
      child = await startChild();
      const first = await pushImage('v1', 'first');
      expect(first.status).to.equal(201);
      await receiver.until(() => receiver.deliveries.length === 1);
      const second = await pushImage('v2', 'second');
      expect(second.status).to.equal(201);
      // Moving an immutable tag fails inside the transaction: no event, ever.
      expect((await pushImage('v1', 'refused')).status).to.equal(403);
      child.kill('SIGKILL');
      await new Promise((resolve) => child?.once('exit', resolve));
      const hungId = receiver.deliveries[0]?.id;

      receiver.mode = 'ok';
      child = await startChild();
      await receiver.until(() => receiver.accepted.length >= 2, 30_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(receiver.accepted.map((delivery) => delivery.event.data.digest)).to.deep.equal([first.digest, second.digest]);
      expect(receiver.accepted[0]?.id).to.equal(hungId);
      expect(new Set(receiver.deliveries.map((delivery) => delivery.id)).size).to.equal(2);
      child.kill('SIGTERM');
      await new Promise((resolve) => child?.once('exit', resolve));
      child = undefined;
    });
  });
});
