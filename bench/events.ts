/**
 * Events (docs/EVENTS.md): what the outbox costs and carries.
 *
 * - throughput: events queued in the outbox and delivered by one instance to
 *   a receiver on loopback that answers 200 at once;
 * - a dead receiver: RSS and heap of a registry process of its own while
 *   100,000 events wait (10,000 with --quick) and the dispatcher retries for
 *   a simulated hour;
 * - push time with webhooks on and off: the same small images pushed to a
 *   registry with one endpoint and to one with none, rounds alternating.
 *
 * `npm run bench:events` prints JSON; `npm run bench` includes it.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../src/metadata/db.ts';
import { EventOutbox, type OutboxEntry } from '../src/metadata/events/outbox.ts';
import { sha256 } from '../test/support/bytes.ts';
import { OciTestClient } from '../test/support/oci-client.ts';
import { OCI_MANIFEST, imageManifest } from '../test/support/scale-client.ts';
import { USERS, startTestRegistry, type TestRegistry } from '../test/support/registry-harness.ts';
import { WebhookReceiver } from '../test/support/webhook-receiver.ts';
import { exposeGc } from '../test/support/expose-gc.ts';

export interface EventsResult {
  throughput: { events: number; repositories: number; seconds: number; eventsPerSecond: number; metadata: 'sqlite' };
  /** Memory before the events are queued, once they are, and after the hour of retries. */
  deadReceiver: { queued: number; simulatedMinutes: number; attempts: number; rssBeforeMiB: number; rssQueuedMiB: number; rssAfterMiB: number; heapBeforeMiB: number; heapQueuedMiB: number; heapAfterMiB: number };
  push: { images: number; rounds: number; offMs: number; onMs: number; onOverOff: number; delivered: number };
}

const SECRET = 'bench-webhook-secret-of-at-least-32-chars';
const MiB = 1024 * 1024;

function eventsConfig(receiver: WebhookReceiver) {
  return { endpoints: [{ name: 'bench', url: receiver.url, secret: SECRET }], allowedNetworks: ['127.0.0.0/8'], pollMilliseconds: 200 };
}

async function bulkQueue(registry: TestRegistry, count: number, repositories: number): Promise<void> {
  const db = await openDatabase({ kind: 'sqlite', path: registry.databasePath as string });
  try {
    for (let start = 0; start < count; start += 500) {
      const entries: OutboxEntry[] = [];
      for (let n = start; n < Math.min(count, start + 500); n++) {
        const repository = `bench/r${n % repositories}`;
        const body = JSON.stringify({ specversion: '1.0', id: `bulk-${n}`, source: 'bench', type: 'dev.holdfast.manifest.pushed', subject: `${repository}:t${n}`, time: new Date().toISOString(), data: { repository, tag: `t${n}` } });
        entries.push({ id: `bulk-${n}`, endpoint: 'bench', lane: repository, repository, namespace: 'bench', type: 'manifest.pushed', body });
      }
      await db.transaction((tx) => EventOutbox.append(tx, entries, { ordered: false }));
    }
  } finally {
    await db.close();
  }
}

async function throughput(quick: boolean): Promise<EventsResult['throughput']> {
  const receiver = await WebhookReceiver.start();
  const registry = await startTestRegistry({ backend: 'fs', events: { ...eventsConfig(receiver), concurrency: 16 } });
  try {
    const events = quick ? 2000 : 20_000;
    const repositories = 200;
    await bulkQueue(registry, events, repositories);
    const started = performance.now();
    registry.registry.events?.dispatcher.nudge();
    await receiver.until(() => receiver.accepted.length >= events, 600_000);
    const seconds = (performance.now() - started) / 1000;
    return { events, repositories, seconds: round(seconds), eventsPerSecond: Math.round(events / seconds), metadata: 'sqlite' };
  } finally {
    await registry.close();
    await receiver.close();
  }
}

/**
 * A dead receiver: the registry runs in a child process of its own (this
 * one has run the other benchmarks, and holds the receiver's records), so
 * its RSS is the registry's alone, with its embedded hold.
 */
async function deadReceiver(quick: boolean): Promise<EventsResult['deadReceiver']> {
  const receiver = await WebhookReceiver.start();
  receiver.mode = 'fail';
  try {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url), '--dead-receiver-child', receiver.url, ...(quick ? ['--quick'] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    if (code !== 0) throw new Error(`the dead-receiver child exited with ${code}`);
    const measured = JSON.parse(output) as Omit<EventsResult['deadReceiver'], 'attempts'>;
    return { ...measured, attempts: receiver.deliveries.length };
  } finally {
    await receiver.close();
  }
}

/** The child's side: 100,000 events (10,000 quick) queued for `url`, an hour of retries in simulated time, memory before and after. */
async function deadReceiverChild(url: string, quick: boolean): Promise<Omit<EventsResult['deadReceiver'], 'attempts'>> {
  let offset = 0;
  const registry = await startTestRegistry({
    backend: 'fs',
    events: { endpoints: [{ name: 'bench', url, secret: SECRET }], allowedNetworks: ['127.0.0.0/8'], pollMilliseconds: 200, maxQueued: 1_000_000 },
    eventsFor: () => ({ now: () => Date.now() + offset }),
  });
  try {
    const queued = quick ? 10_000 : 100_000;
    const events = registry.registry.events;
    if (!events) throw new Error('events are configured');
    await events.dispatcher.settle();
    const gc = exposeGc();
    gc();
    const before = process.memoryUsage();
    await bulkQueue(registry, queued, 1000);
    gc();
    const filled = process.memoryUsage();
    const minutes = 60;
    for (let elapsed = 0; elapsed < minutes * 60_000; elapsed += 10_000) {
      offset += 10_000;
      await events.dispatcher.settle();
    }
    gc();
    const after = process.memoryUsage();
    return {
      queued,
      simulatedMinutes: minutes,
      rssBeforeMiB: round(before.rss / MiB),
      rssQueuedMiB: round(filled.rss / MiB),
      rssAfterMiB: round(after.rss / MiB),
      heapBeforeMiB: round(before.heapUsed / MiB),
      heapQueuedMiB: round(filled.heapUsed / MiB),
      heapAfterMiB: round(after.heapUsed / MiB),
    };
  } finally {
    await registry.close();
  }
}

async function pushTime(quick: boolean): Promise<EventsResult['push']> {
  const receiver = await WebhookReceiver.start();
  const on = await startTestRegistry({ backend: 'fs', events: eventsConfig(receiver) });
  const off = await startTestRegistry({ backend: 'fs' });
  try {
    const images = quick ? 20 : 200;
    const rounds = quick ? 1 : 3;
    const times: { on: number[]; off: number[] } = { on: [], off: [] };
    for (let round = 0; round < rounds; round++) {
      for (const [name, registry] of (round % 2 === 0 ? [['on', on], ['off', off]] : [['off', off], ['on', on]]) as [keyof typeof times, TestRegistry][]) {
        const client = new OciTestClient(USERS.alice);
        const repo = `alice/bench-${round}`;
        await client.token(registry.url, repo);
        const started = performance.now();
        for (let i = 0; i < images; i++) await pushImage(client, registry.url, repo, `t${i}`);
        times[name].push((performance.now() - started) / images);
      }
    }
    await receiver.until(() => receiver.accepted.length >= images * rounds, 120_000);
    const offMs = median(times.off);
    const onMs = median(times.on);
    return { images, rounds, offMs: round(offMs), onMs: round(onMs), onOverOff: round(onMs / offMs), delivered: receiver.accepted.length };
  } finally {
    await on.close();
    await off.close();
    await receiver.close();
  }
}

/** A config blob, a 4 KiB layer and a manifest: the metadata path a push takes, with little byte time. */
async function pushImage(client: OciTestClient, base: string, repo: string, tag: string): Promise<void> {
  const config = randomBytes(64);
  const layer = randomBytes(4096);
  await client.pushBlob(base, repo, config);
  await client.pushBlob(base, repo, layer);
  const manifest = imageManifest({ digest: sha256(config), size: config.length }, [{ digest: sha256(layer), size: layer.length }]);
  const put = await client.call(base, repo, 'PUT', `/v2/${repo}/manifests/${tag}`, { body: manifest, headers: { 'content-type': OCI_MANIFEST } });
  if (put.status !== 201) throw new Error(`manifest PUT: ${put.status} ${put.text}`);
}

export async function runEvents(options: { quick: boolean; log?: (line: string) => void }): Promise<EventsResult> {
  options.log?.('events: delivery throughput');
  const delivered = await throughput(options.quick);
  options.log?.('events: a dead receiver and a deep queue');
  const dead = await deadReceiver(options.quick);
  options.log?.('events: push time with webhooks on and off');
  const push = await pushTime(options.quick);
  return { throughput: delivered, deadReceiver: dead, push };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { mochaGlobalTeardown } = await import('../test/support/global-fixtures.ts');
  const quick = process.argv.includes('--quick');
  const child = process.argv.indexOf('--dead-receiver-child');
  try {
    const result = child >= 0 ? await deadReceiverChild(process.argv[child + 1] as string, quick) : await runEvents({ quick, log: (line) => console.error(`[bench] ${line}`) });
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await mochaGlobalTeardown();
  }
}
