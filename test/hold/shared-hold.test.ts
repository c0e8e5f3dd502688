import { expect } from 'chai';
import { ServiceTokenSigner } from '../../src/core/service-token.ts';
import { HoldClient, HoldClientError } from '../../src/driver/hold-client.ts';
import { PROTOCOL_STEPS, type ProtocolStep, type StepHook } from '../../src/hold/protocol-steps.ts';
import { BACKENDS, DIDS, startTestHold, type TestHold } from '../support/hold-harness.ts';
import { getFromUrl, putToUrl, randomBlob, sha256 } from '../support/bytes.ts';

/**
 * One hold, two registries (two trusted issuers), as a shared deployment
 * runs it. Registry one is the harness's own client; registry two signs its
 * tokens as another issuer.
 */
const SECOND_ISSUER = 'did:web:registry-two.test';

function secondRegistry(hold: TestHold): HoldClient {
  return new HoldClient({
    url: hold.url,
    audience: hold.hold.config.identity,
    signer: new ServiceTokenSigner({ issuer: SECOND_ISSUER, privateKey: hold.keys.privateKey }),
    retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 },
  });
}

/** Uploads `blob` through a single-PUT upload and publishes it as `client`'s registry. */
async function publishAs(client: HoldClient, blob: Buffer): Promise<{ digest: string; existed: boolean }> {
  const digest = sha256(blob);
  const put = await client.putPresignedUrl(DIDS.owner, digest);
  expect((await putToUrl(put.url, blob)).status).to.equal(200);
  const moved = await client.move(DIDS.owner, put.upload_name as string, digest);
  return { digest, existed: moved.existed };
}

async function codeOf(promise: Promise<unknown>): Promise<string | undefined> {
  return promise.then(
    () => undefined,
    (err: unknown) => (err instanceof HoldClientError ? err.code : String(err)),
  );
}

for (const backend of BACKENDS) {
  describe(`a hold shared by two registries (${backend})`, function () {
    let hold: TestHold;
    let two: HoldClient;

    beforeEach(async function () {
      hold = await startTestHold(backend, { extraIssuers: [SECOND_ISSUER] });
      two = secondRegistry(hold);
    });
    afterEach(async function () {
      await two?.close();
      await hold?.close();
    });

    it("/delete by one registry keeps a blob the other still claims, and leaves no stale claim when the last one goes", async function () {
      const blob = randomBlob(2048);
      const { digest } = await publishAs(hold.client, blob);
      expect((await publishAs(two, blob)).existed).to.equal(true);

      expect(await hold.client.delete(DIDS.owner, digest)).to.deep.equal({ deleted: false });
      expect((await two.stat(DIDS.owner, digest)).size, 'registry two still has its blob').to.equal(2048);
      expect(await hold.inspect.keys('holdfast/claims/'), "only registry two's claim is left").to.have.length(1);

      expect(await two.delete(DIDS.owner, digest)).to.deep.equal({ deleted: true });
      expect(await codeOf(hold.client.stat(DIDS.owner, digest))).to.equal('BLOB_UNKNOWN');
      expect(await hold.inspect.keys('holdfast/claims/')).to.deep.equal([]);
    });
  });
}

/**
 * One-shot pause points on the hold's release and move steps: `arm` returns
 * a promise that settles when the step is reached and a `go` that lets the
 * paused call continue.
 */
class Pauses {
  readonly #armed = new Map<string, { reached: () => void; go: Promise<void> }>();
  readonly #open: (() => void)[] = [];

  readonly hook: StepHook = async (step, digest) => {
    const gate = this.#armed.get(`${step} ${digest}`);
    if (!gate) return;
    this.#armed.delete(`${step} ${digest}`);
    gate.reached();
    await gate.go;
  };

  arm(step: ProtocolStep, digest: string): { reached: Promise<void>; go: () => void } {
    let reached!: () => void;
    let go!: () => void;
    const reachedPromise = new Promise<void>((resolve) => (reached = resolve));
    const goPromise = new Promise<void>((resolve) => (go = resolve));
    this.#armed.set(`${step} ${digest}`, { reached, go: goPromise });
    this.#open.push(go);
    return { reached: reachedPromise, go };
  }

  /** Lets every paused call go and forgets gates nothing reached. */
  clear(): void {
    for (const go of this.#open.splice(0)) go();
    this.#armed.clear();
  }
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

interface Interleaving {
  releaseStep?: (typeof PROTOCOL_STEPS.release)[number];
  moveStep?: (typeof PROTOCOL_STEPS.move)[number];
  /** Which paused call is let go first. */
  first: 'release' | 'move';
  /** Milliseconds to wait between starting the two calls when nothing is paused. */
  delayMs: number;
}

function interleavings(random: number): Interleaving[] {
  const all: Interleaving[] = [];
  for (const releaseStep of PROTOCOL_STEPS.release) {
    for (const moveStep of [undefined, ...PROTOCOL_STEPS.move]) {
      for (const first of ['release', 'move'] as const) all.push({ releaseStep, moveStep, first, delayMs: 0 });
    }
  }
  const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;
  for (let n = 0; n < random; n++) {
    all.push({
      releaseStep: pick([undefined, ...PROTOCOL_STEPS.release]),
      moveStep: pick([undefined, ...PROTOCOL_STEPS.move]),
      first: pick(['release', 'move'] as const),
      delayMs: Math.floor(Math.random() * 15),
    });
  }
  return all;
}

for (const backend of BACKENDS) {
  describe(`release racing move across two registries (${backend})`, function () {
    this.timeout(240_000);
    const pauses = new Pauses();
    let hold: TestHold;
    let two: HoldClient;

    before(async function () {
      hold = await startTestHold(backend, { extraIssuers: [SECOND_ISSUER], onStep: pauses.hook });
      two = secondRegistry(hold);
    });
    after(async function () {
      await two?.close();
      await hold?.close();
    });

    /** Registry two's move, retried the way its driver would on 503 (a deletion in progress). */
    async function moveRetrying(from: string, digest: string) {
      for (let attempt = 0; ; attempt++) {
        try {
          return await two.move(DIDS.owner, from, digest);
        } catch (err) {
          if (!(err instanceof HoldClientError && err.status === 503) || attempt >= 20) throw err;
          await sleep(50);
        }
      }
    }

    it('never loses a blob: 200+ interleavings, a pause at every step of release, 0 lost', async function () {
      const cases = interleavings(160);
      const figures = { interleavings: 0, lost: 0, releaseDeleted: 0, moveExisted: 0, moveFresh: 0 };
      for (const [index, plan] of cases.entries()) {
        const blob = randomBlob(512 + index);
        const { digest } = await publishAs(hold.client, blob);
        const put = await two.putPresignedUrl(DIDS.owner, digest);
        await putToUrl(put.url, blob);

        const releaseGate = plan.releaseStep ? pauses.arm(`release:${plan.releaseStep}`, digest) : undefined;
        const moveGate = plan.moveStep ? pauses.arm(`move:${plan.moveStep}`, digest) : undefined;
        const release = hold.client.release(DIDS.owner, digest);
        release.catch(() => {});
        await Promise.race([releaseGate?.reached, release, sleep(plan.delayMs)]);
        const move = moveRetrying(put.upload_name as string, digest);
        move.catch(() => {});
        await Promise.race([moveGate?.reached, move, sleep(100)]);
        const [firstGate, secondGate] = plan.first === 'release' ? [releaseGate, moveGate] : [moveGate, releaseGate];
        firstGate?.go();
        await Promise.race([plan.first === 'release' ? release : move, sleep(100)]);
        secondGate?.go();
        const [released, moved] = await Promise.all([release, move]);
        pauses.clear();

        figures.interleavings++;
        if (released.deleted) figures.releaseDeleted++;
        if (moved.existed) figures.moveExisted++;
        else figures.moveFresh++;
        const served = await two.getPresignedUrl(DIDS.owner, digest).then((url) => getFromUrl(url.url));
        const stat = await codeOf(two.stat(DIDS.owner, digest));
        if (stat !== undefined || served.status !== 200 || !served.body.equals(blob)) figures.lost++;
        await two.release(DIDS.owner, digest);
      }
      console.log(`      ${backend}: ${JSON.stringify(figures)}`);
      expect(figures.interleavings).to.be.at.least(200);
      expect(figures.lost, `blobs lost: ${JSON.stringify(figures)}`).to.equal(0);
      expect(await hold.inspect.keys('holdfast/claims/'), 'no claim outlives its blob').to.deep.equal([]);
      expect(await hold.inspect.keys('docker/'), 'every blob was released in the end').to.deep.equal([]);
    });
  });
}

for (const backend of BACKENDS) {
  describe(`a deletion whose hold process died (${backend})`, function () {
    const pauses = new Pauses();
    let offsetMs = 0;
    let hold: TestHold;
    let two: HoldClient;

    beforeEach(async function () {
      offsetMs = 0;
      hold = await startTestHold(backend, { extraIssuers: [SECOND_ISSUER], onStep: pauses.hook, now: () => new Date(Date.now() + offsetMs) });
      two = secondRegistry(hold);
    });
    afterEach(async function () {
      pauses.clear();
      await two?.close();
      await hold?.close();
    });

    it('blocks a push of its digest only until its lease expires; the push then takes it over and publishes fresh bytes', async function () {
      const blob = randomBlob(3000);
      const { digest } = await publishAs(hold.client, blob);
      const gate = pauses.arm('release:reference-deleted', digest);
      const stuck = hold.client.release(DIDS.owner, digest);
      await gate.reached;

      const put = await two.putPresignedUrl(DIDS.owner, digest);
      await putToUrl(put.url, blob);
      const blocked = await two.move(DIDS.owner, put.upload_name as string, digest).catch((err: unknown) => err);
      expect((blocked as HoldClientError).status, 'a live deletion: retry later').to.equal(503);

      offsetMs = (hold.hold.config.deletionLeaseSeconds + 1) * 1000;
      expect(await two.move(DIDS.owner, put.upload_name as string, digest)).to.deep.include({ existed: false });
      gate.go();
      await stuck;
      const served = await getFromUrl((await two.getPresignedUrl(DIDS.owner, digest)).url);
      expect(served.body.equals(blob)).to.equal(true);
      expect(await hold.inspect.keys('holdfast/deleting/')).to.deep.equal([]);
      expect(await two.release(DIDS.owner, digest)).to.deep.equal({ deleted: true, remaining_claims: 0 });
      expect(await hold.inspect.keys('holdfast/objects/'), 'the abandoned bytes were collected').to.deep.equal([]);
    });

    it('is finished by the janitor once its lease expires', async function () {
      const { digest } = await publishAs(hold.client, randomBlob(3000));
      const gate = pauses.arm('release:claims-recounted', digest);
      const stuck = hold.client.release(DIDS.owner, digest);
      await gate.reached;
      expect(await hold.inspect.keys('holdfast/deleting/')).to.have.length(1);

      await hold.hold.runJanitor();
      expect(await hold.inspect.keys('docker/'), 'a live lease is left alone').to.have.length(1);
      offsetMs = (hold.hold.config.deletionLeaseSeconds + 1) * 1000;
      await hold.hold.runJanitor();
      gate.go();
      expect(await stuck).to.deep.include({ deleted: false });
      for (const prefix of ['docker/', 'holdfast/objects/', 'holdfast/deleting/', 'holdfast/claims/']) {
        expect(await hold.inspect.keys(prefix), prefix).to.deep.equal([]);
      }
    });
  });
}

describe('session updates on a provider without conditional writes (upcloud profile on MinIO)', function () {
  it('refuses the second of two progress updates from the same base, as with If-Match', async function () {
    const hold = await startTestHold('s3', { s3: { provider: 'upcloud' } });
    try {
      expect(hold.hold.backend.capabilities.conditionalWrites).to.equal(false);
      const outcomes = { won: 0, refused: 0 };
      for (let round = 0; round < 10; round++) {
        const started = await hold.client.startMultipart(DIDS.owner);
        const url = await hold.client.putPresignedUrl(DIDS.owner, started.upload_name, { uploadId: started.upload_id, offset: 0 });
        await putToUrl(url.url, randomBlob(10));
        const updates = await Promise.allSettled(
          [1, 2].map(() =>
            hold.client.uploadProgress(DIDS.owner, started.upload_name, started.upload_id, { base_size: 0, staged: [{ offset: 0, size: 10, segment_id: url.segment_id as string }] }),
          ),
        );
        outcomes.won += updates.filter((result) => result.status === 'fulfilled').length;
        outcomes.refused += updates.filter((result) => result.status === 'rejected' && (result.reason as HoldClientError).code === 'UPLOAD_STATE_CONFLICT').length;
        await hold.client.abortMultipart(DIDS.owner, started.upload_name, started.upload_id);
      }
      expect(outcomes, 'exactly one of each pair wins').to.deep.equal({ won: 10, refused: 10 });
    } finally {
      await hold.close();
    }
  });
});
