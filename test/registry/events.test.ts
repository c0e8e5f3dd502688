import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { verifyDelivery } from '../../src/registry/events/signature.ts';
import { sha256 } from '../support/bytes.ts';
import { OciTestClient } from '../support/oci-client.ts';
import { USERS, startTestRegistry, type TestRegistry } from '../support/registry-harness.ts';
import { WebhookReceiver } from '../support/webhook-receiver.ts';

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
  readonly client = new OciTestClient(USERS.alice);
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
      expect(await outbox.redeliver({ deadOf: 'hooks' }, Date.now())).to.equal(1);
      events.dispatcher.nudge();
      await receiver.until(() => receiver.accepted.some((delivery) => delivery.id === row?.id));
      expect(receiver.deliveries.filter((delivery) => delivery.id === row?.id).length).to.equal(2);
    });
  });
});
