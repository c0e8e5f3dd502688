import { expect } from 'chai';
import { createHash } from 'node:crypto';
import { HeadObjectCommand, ListMultipartUploadsCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import pg from 'pg';
import { issuerId } from '../../src/hold/keys.ts';
import { sharedMinio, sharedPostgres } from '../support/global-fixtures.ts';
import type { RunningMinio } from '../support/minio.ts';
import { DockerLikeClient, FailureLog, SyntheticBlob, imageManifest, type BlobSource, type Failure } from '../support/scale-client.ts';
import { SCALE_ISSUER, startScaleStack, type Restart, type ScaleStack, type Tier } from '../support/scale-stack.ts';
import { STACK_USER } from '../support/stack.ts';

const MiB = 1024 * 1024;
const PUSHES = 32;
const LAYER_SIZE = 64 * MiB;
const CHUNK = 8 * MiB;
const PULLERS = 64;
const REPO = `${STACK_USER.handle}/scale`;
const CHURN_REPO = `${STACK_USER.handle}/churn`;
// A registry killed mid-release leaves its blob deleting; another pass takes it over after the (minimum) timeout.
const GC = { graceSeconds: 20, intervalSeconds: 2, deletingTimeoutSeconds: 60 };
const HOLD = { uploadTtlSeconds: 60, janitorIntervalSeconds: 2, deletionLeaseSeconds: 30 };
/** Pullers check this much of a layer, at a random offset, against the bytes pushed. */
const PULL_RANGE = 64 * 1024;
/** Each registry and each hold, in turn, twice; the sixth kill (hold 0) lands while a /move and a /release are in flight there. */
const KILLS: readonly { tier: Tier; index: number; midOperation?: true }[] = [
  { tier: 'registry', index: 0 },
  { tier: 'hold', index: 0 },
  { tier: 'registry', index: 1 },
  { tier: 'hold', index: 1 },
  { tier: 'registry', index: 0 },
  { tier: 'hold', index: 0, midOperation: true },
  { tier: 'registry', index: 1 },
  { tier: 'hold', index: 1 },
];
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Image {
  repo: string;
  tag: string;
  manifest: Buffer;
  blobs: BlobSource[];
}

describe('system: scale-out, two holds and two registries behind round-robin, rolling SIGKILLs under load', function () {
  this.timeout(600_000);
  const prefix = `system-scale-${process.pid}`;
  let minio: RunningMinio;
  let stack: ScaleStack;
  let db: pg.Client;

  before(async function () {
    minio = await sharedMinio();
    const postgresUrl = await (await sharedPostgres()).createDatabase();
    stack = await startScaleStack({ minio, postgresUrl, prefix, gc: GC, hold: HOLD });
    db = new pg.Client({ connectionString: postgresUrl });
    await db.connect();
  });
  after(async function () {
    await db?.end();
    await stack?.stop();
  });

  it('pushes 32 × 64 MiB in 8 MiB PATCHes with 64 pullers, GC passes and 8 SIGKILLs: nothing lost, nothing left behind', async function () {
    const started = Date.now();
    const failures = new FailureLog();
    const client = new DockerLikeClient(stack.url, STACK_USER, failures);
    const base = SyntheticBlob.create('scale-base', 3 * MiB + 17);
    const layers = Array.from({ length: PUSHES }, (_unused, index) => SyntheticBlob.create(`scale-layer-${index}`, LAYER_SIZE));
    let retries = 0;
    // Two small images for the pullers while the big ones are still on their way.
    const seeds = await Promise.all(
      [0, 1].map(async (index) => {
        const layer = SyntheticBlob.create(`seed-${index}`, 16 * MiB);
        const config = SyntheticBlob.fromBytes(Buffer.from(JSON.stringify({ seed: index })));
        const manifest = imageManifest(config, [base, layer]);
        await client.pushImage(REPO, `seed-${index}`, [layer, base, config], manifest, CHUNK);
        return { repo: REPO, tag: `seed-${index}`, manifest, blobs: [config, base, layer] };
      }),
    );
    const done: Image[] = [];
    const pullable: Image[] = [...seeds];
    let loadRunning = true;

    // 32 pushes at once: the 64 MiB layer first, then the shared base layer and the config, then the manifest.
    const pushes = layers.map(async (layer, index) => {
      const config = SyntheticBlob.fromBytes(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', index })));
      const manifest = imageManifest(config, [base, layer]);
      const needed = await client.pushImage(REPO, `img-${index}`, [layer, base, config], manifest, CHUNK);
      retries += needed;
      const image = { repo: REPO, tag: `img-${index}`, manifest, blobs: [config, base, layer] };
      done.push(image);
      pullable.push(image);
    });

    // Garbage for the collector: one tag pushed over and over, layers drawn from a small pool (so
    // digests come back after they were deleted), every config new.
    const pool = Array.from({ length: 4 }, (_unused, index) => SyntheticBlob.create(`churn-${index}`, 6 * MiB + index));
    let churned = 0;
    let lastChurn: Image | undefined;
    const churn = (async () => {
      while (loadRunning) {
        const layer = pool[churned % pool.length] as SyntheticBlob;
        const config = SyntheticBlob.fromBytes(Buffer.from(JSON.stringify({ churn: churned })));
        const manifest = imageManifest(config, [layer]);
        const needed = await client.pushImage(CHURN_REPO, 'latest', [layer, config], manifest, CHUNK);
        retries += needed;
        lastChurn = { repo: CHURN_REPO, tag: 'latest', manifest, blobs: [config, layer] };
        churned++;
        await sleep(300);
      }
    })();

    // 64 pullers: HEAD the layer, GET the manifest, GET a random range of the layer through the redirect.
    let pulls = 0;
    const pullers = Array.from({ length: PULLERS }, async (_unused, puller) => {
      let round = 0;
      while (loadRunning) {
        const image = pullable[(puller + round++) % pullable.length] as Image;
        const layer = image.blobs[2] as SyntheticBlob;
        const start = Math.floor(Math.random() * (layer.size - PULL_RANGE));
        const { retries: needed } = await client.withRetries(`pull ${image.tag}`, async () => {
          const head = await client.call(image.repo, 'HEAD', `/v2/${image.repo}/blobs/${layer.digest}`);
          if (head.status !== 200 || Number(head.headers['content-length']) !== layer.size) throw new Error(`HEAD blob: ${head.status}`);
          const manifest = await client.call(image.repo, 'GET', `/v2/${image.repo}/manifests/${image.tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
          if (manifest.status !== 200 || !manifest.body.equals(image.manifest)) throw new Error(`GET manifest: ${manifest.status}`);
          const bytes = await client.getBlob(image.repo, layer.digest, { start, end: start + PULL_RANGE - 1 });
          if (!bytes.equals(layer.read(start, PULL_RANGE))) throw new Error(`GET blob range at ${start}: wrong bytes`);
        });
        retries += needed;
        pulls++;
        await sleep(1_000);
      }
    });

    // The rolling restarts, each instance in turn, twice.
    const restarts: (Restart & { inFlight?: string[] })[] = [];
    const killer = (async () => {
      await sleep(4_000);
      for (const kill of KILLS) {
        if (kill.midOperation) {
          restarts.push(await killMidOperation(stack, kill.index));
        } else {
          restarts.push(await stack.restart(kill.tier, kill.index));
        }
        await sleep(4_000);
      }
    })();

    const phases = { pushesDone: 0, killsDone: 0 };
    const outcome = await Promise.allSettled([Promise.all(pushes).finally(() => (phases.pushesDone = Date.now())), killer.finally(() => (phases.killsDone = Date.now()))]);
    loadRunning = false;
    const settled = await Promise.allSettled([churn, ...pullers]);
    const loadSeconds = (Date.now() - started) / 1000;
    let settleSeconds = NaN;
    const printReport = () => report({ loadSeconds, pushSeconds: (phases.pushesDone - started) / 1000, killSeconds: (phases.killsDone - started) / 1000, settleSeconds, wallSeconds: (Date.now() - started) / 1000, churned, pulls, retries, failures, restarts, stack });
    let reported = false;
    try {
      const failed = [...outcome, ...settled].filter((result) => result.status === 'rejected').map((result) => String((result as PromiseRejectedResult).reason));
      expect(failed, '0 pushes, pulls or kills failed after retries').to.deep.equal([]);
      expect(done).to.have.length(PUSHES);
      const final = [...seeds, ...done, lastChurn as Image];

      // Every pushed blob and manifest reads back byte-exact.
      for (const image of final) {
        const manifest = await client.call(image.repo, 'GET', `/v2/${image.repo}/manifests/${image.tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
        expect(manifest.status, `${image.repo}:${image.tag}`).to.equal(200);
        expect(manifest.body.equals(image.manifest), `${image.repo}:${image.tag} manifest bytes`).to.equal(true);
        for (const blob of image.blobs) {
          const bytes = await client.getBlob(image.repo, blob.digest);
          expect(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, `${image.tag} ${blob.digest}`).to.equal(blob.digest);
        }
      }

      // The janitors and the collector finish: no open multipart upload, no staged segment, no lease, no orphan.
      const settleStarted = Date.now();
      let state = await bucketState(minio, prefix, db);
      while (!state.clean && Date.now() - settleStarted < (HOLD.uploadTtlSeconds + HOLD.deletionLeaseSeconds + 30) * 1000) {
        await sleep(1_000);
        state = await bucketState(minio, prefix, db);
      }
      settleSeconds = (Date.now() - settleStarted) / 1000;
      printReport();
      reported = true;
      expect(state.multipartUploads, 'open multipart uploads').to.deep.equal([]);
      expect(state.stagedOrSessions, 'keys under holdfast/uploads/').to.deep.equal([]);
      expect(state.leases, 'deletion leases').to.deep.equal([]);
      expect(state.orphanObjects, 'objects no blob names').to.deep.equal([]);
      expect(state.blobsNotLive, 'blobs in the bucket the database does not hold live').to.deep.equal([]);
      expect(state.referencedMissing, 'blobs a manifest references that are not live and stored').to.deep.equal([]);
      expect(state.claimsWithoutLiveBlob, 'claims for blobs the database does not hold live').to.deep.equal([]);
      expect(state.liveWithoutClaim, 'live blobs without a claim').to.deep.equal([]);
      expect(state.deletingRows, 'blob rows stuck in deleting').to.deep.equal([]);
      // Each tier really was balanced: both instances served requests.
      for (const proxy of [stack.registryProxy, stack.holdProxy]) expect(Math.min(...proxy.forwarded)).to.be.greaterThan(100);
      expect(restarts).to.have.length(KILLS.length);
    } finally {
      if (!reported) {
        printReport();
        for (const tier of ['registry', 'hold'] as const) for (const index of [0, 1]) console.log(`--- ${tier} ${index} log tail:\n${stack.logTail(tier, index)}`);
      }
      await client.close();
    }
  });
});

/**
 * Freezes hold `index` inside a /move (its claim is written, the answer held
 * back) and inside a /release (its deletion lease is written), then SIGKILLs
 * and restarts it.
 */
async function killMidOperation(stack: ScaleStack, index: number): Promise<Restart & { inFlight: string[] }> {
  const gate = stack.gates[index];
  if (!gate) throw new TypeError(`no gate for hold ${index}`);
  // The release first (they come only as often as garbage passes its grace), then the next move,
  // well within the 30 s the hold waits for S3 before it gives up on the held call.
  const within = <T>(promise: Promise<T>, seconds: number, what: string) =>
    Promise.race([promise, sleep(seconds * 1000).then(() => Promise.reject(new Error(`no ${what} reached hold ${index} within ${seconds} s`)))]);
  await within(
    gate.hold((method, path) => method === 'PUT' && path.includes('/holdfast/deleting/')),
    120,
    '/release',
  );
  await within(
    gate.hold((method, path) => method === 'PUT' && path.includes('/holdfast/claims/')),
    20,
    '/move',
  );
  const inFlight = stack.holdProxy.inFlight(index).map((entry) => entry.path);
  expect(inFlight, 'requests in flight at the hold being killed').to.include.members(['/move', '/release']);
  const restart = await stack.restart('hold', index);
  gate.releaseAll();
  return { ...restart, inFlight };
}

interface BucketState {
  clean: boolean;
  multipartUploads: string[];
  stagedOrSessions: string[];
  leases: string[];
  orphanObjects: string[];
  blobsNotLive: string[];
  referencedMissing: string[];
  claimsWithoutLiveBlob: string[];
  liveWithoutClaim: string[];
  deletingRows: string[];
}

async function listKeys(minio: RunningMinio, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  let token: string | undefined;
  do {
    const page = await minio.client.send(new ListObjectsV2Command({ Bucket: minio.bucket, Prefix: prefix, ContinuationToken: token }));
    for (const object of page.Contents ?? []) keys.push(object.Key as string);
    token = page.NextContinuationToken;
  } while (token);
  return keys;
}

/** The bucket against the database: what must hold once the janitors and the collector have run. */
async function bucketState(minio: RunningMinio, prefix: string, db: pg.Client): Promise<BucketState> {
  const root = `${prefix}/`;
  // Listed without a prefix and filtered here: MinIO matches a multipart-listing prefix as an exact key.
  const uploads = await minio.client.send(new ListMultipartUploadsCommand({ Bucket: minio.bucket }));
  const multipartUploads = (uploads.Uploads ?? []).map((upload) => upload.Key as string).filter((key) => key.startsWith(root));
  const stagedOrSessions = await listKeys(minio, `${root}holdfast/uploads/`);
  const leases = await listKeys(minio, `${root}holdfast/deleting/`);
  const blobKeys = await listKeys(minio, `${root}docker/registry/v2/blobs/`);
  const targets = new Set<string>();
  const stored = new Set<string>();
  for (const key of blobKeys) {
    const hex = key.split('/').at(-2) as string;
    // The collector keeps running: a blob listed a moment ago may be gone now.
    const head = await minio.client.send(new HeadObjectCommand({ Bucket: minio.bucket, Key: key })).catch((err: Error) => (err.name === 'NotFound' ? undefined : Promise.reject(err)));
    if (!head) continue;
    stored.add(`sha256:${hex}`);
    const target = head.Metadata?.['holdfast-target'];
    if (target) {
      targets.add(target);
      await minio.client.send(new HeadObjectCommand({ Bucket: minio.bucket, Key: target })).catch(() => stored.delete(`sha256:${hex}`));
    }
  }
  const orphanObjects = (await listKeys(minio, `${root}holdfast/objects/`)).filter((key) => !targets.has(key));
  const claimed = new Set(
    (await listKeys(minio, `${root}holdfast/claims/`)).filter((key) => key.endsWith(`/${issuerId(SCALE_ISSUER)}`)).map((key) => `sha256:${key.split('/').at(-2) as string}`),
  );
  const rows = (await db.query<{ digest: string; state: string }>('SELECT digest, state FROM blobs')).rows;
  const live = new Set(rows.filter((row) => row.state === 'live').map((row) => row.digest));
  const referenced = (await db.query<{ child: string }>("SELECT DISTINCT child FROM manifest_references WHERE kind = 'blob'")).rows.map((row) => row.child);
  const state: Omit<BucketState, 'clean'> = {
    multipartUploads,
    stagedOrSessions,
    leases,
    orphanObjects,
    blobsNotLive: [...stored].filter((digest) => !live.has(digest)),
    referencedMissing: referenced.filter((digest) => !live.has(digest) || !stored.has(digest)),
    claimsWithoutLiveBlob: [...claimed].filter((digest) => !live.has(digest)),
    liveWithoutClaim: [...live].filter((digest) => !claimed.has(digest)),
    deletingRows: rows.filter((row) => row.state === 'deleting').map((row) => row.digest),
  };
  return { ...state, clean: Object.values(state).every((list) => list.length === 0) };
}

function report(figures: {
  loadSeconds: number;
  pushSeconds: number;
  killSeconds: number;
  settleSeconds: number;
  wallSeconds: number;
  churned: number;
  pulls: number;
  retries: number;
  failures: FailureLog;
  restarts: (Restart & { inFlight?: string[] })[];
  stack: ScaleStack;
}): void {
  const { failures, restarts, stack } = figures;
  const lines = [
    `scale-out: ${PUSHES} pushes × ${LAYER_SIZE / MiB} MiB (${(PUSHES * LAYER_SIZE) / MiB} MiB in ${CHUNK / MiB} MiB PATCHes), ${figures.churned} churn pushes, ${figures.pulls} pulls by ${PULLERS} pullers`,
    `  pushes done after ${figures.pushSeconds.toFixed(1)} s, kills after ${figures.killSeconds.toFixed(1)} s, load ${figures.loadSeconds.toFixed(1)} s, janitors/GC settled in ${figures.settleSeconds.toFixed(1)} s, wall ${figures.wallSeconds.toFixed(1)} s`,
    `  client retries needed: ${figures.retries} (${failures.failures.length} failed requests)`,
    `  registry proxy: ${stack.registryProxy.forwarded.join(' / ')} requests, ${stack.registryProxy.failedOver} failed over, ${stack.registryProxy.badGateway} × 502`,
    `  hold proxy: ${stack.holdProxy.forwarded.join(' / ')} requests, ${stack.holdProxy.failedOver} failed over, ${stack.holdProxy.badGateway} × 502`,
  ];
  // A kill shows as connections cut mid-request (502 from the proxy, resets); GC and janitor refusals are listed below.
  const cut = (failure: Failure) => /502|ECONNRESET|EPIPE|socket|other side closed/i.test(failure.detail);
  restarts.forEach((restart, index) => {
    const until = restarts[index + 1]?.killedAt ?? Infinity;
    const caused = failures.failures.filter((failure) => cut(failure) && failure.at >= restart.killedAt && failure.at < until);
    const recovered = Math.max(0, ...caused.map((failure) => (failure.recoveredAt ?? Infinity) - restart.killedAt));
    lines.push(
      `  kill ${index + 1}: ${restart.tier} ${restart.index}${restart.inFlight ? ` (in flight: ${restart.inFlight.join(', ')})` : ''}: ` +
        `healthy again after ${restart.healthyAt - restart.killedAt} ms; ${caused.length} client requests cut; every client answered again ${recovered} ms after the kill`,
    );
  });
  const reasons = new Map<string, number>();
  for (const failure of failures.failures) {
    const reason = `${failure.what.split(' ')[0]}: ${failure.detail.replace(/\s+/g, ' ').replace(/[0-9a-f]{12,}/g, '…').slice(0, 80)}`;
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  for (const [reason, count] of reasons) lines.push(`    ${count} × ${reason}`);
  console.log(lines.join('\n'));
}
