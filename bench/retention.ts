/**
 * A retention pass over one repository of N tags (100,000 by default), each
 * on its own manifest, on SQLite and on Postgres: the time of a dry run, of a
 * pass that removes all but the newest `--keep` tags and their manifests, and
 * of a pass that then finds nothing to remove. The rows are inserted in bulk;
 * the pass is the one the registry runs (`Retention` over the metadata store).
 *
 *   npm run bench:retention -- [--tags 100000] [--keep 1000]
 *
 * Prints a table and writes bench/results/retention.json. Times are reported,
 * never asserted.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openDatabase, type DatabaseConfig, type Db } from '../src/metadata/db.ts';
import { SqlMetadataStore } from '../src/metadata/oci/store.ts';
import { ImmutableTags } from '../src/registry/policies/immutable.ts';
import { Retention } from '../src/registry/policies/retention.ts';
import { startPostgres } from '../test/support/postgres.ts';

function flag(name: string, fallback: number): number {
  const index = process.argv.indexOf(`--${name}`);
  return index >= 0 ? Number(process.argv[index + 1]) : fallback;
}

const TAGS = flag('tags', 100_000);
const KEEP = flag('keep', 1000);
const REPO = 'ci/app';
const BATCH = 500;
const digestOf = (i: number) => `sha256:${i.toString(16).padStart(64, '0')}`;

async function fill(db: Db): Promise<void> {
  const old = Date.now() - 30 * 86_400_000;
  const layer = digestOf(10_000_000);
  await db.run('INSERT INTO repositories (name, created_at) VALUES (?, ?)', [REPO, new Date(old).toISOString()]);
  await db.run("INSERT INTO blobs (digest, size, created_at, state) VALUES (?, ?, ?, 'live')", [layer, 1000, new Date(old).toISOString()]);
  for (let start = 0; start < TAGS; start += BATCH) {
    const rows = Array.from({ length: Math.min(BATCH, TAGS - start) }, (_, k) => start + k);
    const at = (i: number) => new Date(old + i * 1000).toISOString();
    await db.transaction(async (tx) => {
      await tx.run(
        `INSERT INTO manifests (repository, digest, media_type, content, size, created_at) VALUES ${rows.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')}`,
        rows.flatMap((i) => [REPO, digestOf(i), 'application/vnd.oci.image.manifest.v1+json', Buffer.from(`{"n":${i}}`), 10, at(i)]),
      );
      await tx.run(`INSERT INTO manifest_references (repository, digest, child, kind) VALUES ${rows.map(() => "(?, ?, ?, 'blob')").join(', ')}`, rows.flatMap((i) => [REPO, digestOf(i), layer]));
      await tx.run(`INSERT INTO tags (repository, tag, digest, updated_at) VALUES ${rows.map(() => '(?, ?, ?, ?)').join(', ')}`, rows.flatMap((i) => [REPO, `ci-${i}`, digestOf(i), at(i)]));
    });
  }
}

interface Figures {
  metadata: string;
  tags: number;
  dryRunSeconds: number;
  passSeconds: number;
  deletedTags: number;
  deletedManifests: number;
  idlePassSeconds: number;
}

async function measure(metadata: string, config: DatabaseConfig): Promise<Figures> {
  const db = await openDatabase(config);
  await fill(db);
  // As autovacuum would by now on a registry that grew to this size: without statistics the planner takes the tables for empty.
  if (db.dialect === 'postgres') await db.run('ANALYZE');
  const store = new SqlMetadataStore(db);
  const retention = new Retention({
    rules: [{ repositories: 'ci/**', keepTags: [], keepLast: KEEP, untaggedAfterHours: 1 }],
    store: store.retention,
    listRepositories: (page) => store.listRepositories(page),
    immutableTags: new ImmutableTags([]),
  });
  const timed = async <T>(work: () => Promise<T>): Promise<[T, number]> => {
    const started = performance.now();
    const value = await work();
    return [value, (performance.now() - started) / 1000];
  };
  const [, dryRunSeconds] = await timed(() => retention.run({ dryRun: true }));
  const [report, passSeconds] = await timed(() => retention.run());
  const [, idlePassSeconds] = await timed(() => retention.run());
  await store.close();
  return {
    metadata,
    tags: TAGS,
    dryRunSeconds,
    passSeconds,
    deletedTags: report.deletedTags,
    deletedManifests: report.deletedManifests,
    idlePassSeconds,
  };
}

const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-bench-retention-'));
const postgres = await startPostgres();
const results: Figures[] = [];
try {
  results.push(await measure('sqlite', { kind: 'sqlite', path: path.join(dir, 'registry.db') }));
  results.push(await measure('postgres', { kind: 'postgres', url: await postgres.createDatabase() }));
} finally {
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
}

const f = (seconds: number) => seconds.toFixed(2);
console.log(`\nretention over one repository of ${TAGS} tags, each on its own manifest; the rule keeps the newest ${KEEP} and removes the rest with their manifests\n`);
console.log('| metadata | dry run | pass | removed tags / manifests | pass with nothing to remove |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const r of results) console.log(`| ${r.metadata} | ${f(r.dryRunSeconds)} s | ${f(r.passSeconds)} s | ${r.deletedTags} / ${r.deletedManifests} | ${f(r.idlePassSeconds)} s |`);
const out = path.join(import.meta.dirname, 'results');
await mkdir(out, { recursive: true });
await writeFile(path.join(out, 'retention.json'), `${JSON.stringify({ date: new Date().toISOString(), node: process.version, keep: KEEP, results }, null, 2)}\n`);
