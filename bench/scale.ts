/**
 * Cost as the registry grows (issue 26): a registry filled to N = 10³ … 10⁶
 * (rows in bulk, plus real images pushed through the API), on Postgres and
 * on SQLite, measured at each N: request latencies at 16 connections, a GC
 * pass (dry run, real, idle), the hold janitor's pass, and registry RSS;
 * and distribution's garbage-collect on the same content, same MinIO.
 *
 *   npm run bench:scale -- [--quick] [--sizes 1e3,1e4] [--metadata postgres,sqlite]
 *                          [--sqlite-max 1e5] [--distribution-sizes 1e4,1e5] [--hold-max 1e5] [--requests 2000]
 *                          [--rounds 3] [--idle-uploads 1000] [--out file] [--no-docs]
 *
 * Writes bench/results/scale.json (--quick: scale-quick.json); a full run
 * also splices its tables into docs/BENCHMARKS.md between its own markers
 * and draws docs/scale-*.svg. Speeds are reported, never asserted.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdirSync, statSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { openDatabase } from '../src/metadata/db.ts';
import { mochaGlobalTeardown, sharedPostgres } from '../test/support/global-fixtures.ts';
import { type RunningMinio, startMinio } from '../test/support/minio.ts';
import { STACK_USER, startStack } from '../test/support/stack.ts';
import { currentRssMiB, idleUploadsRss } from './scale/rss.ts';
import { machineInfo } from './measure.ts';
import { spliceReport } from './report.ts';
import { APP, BIG, fillRegistry } from './scale/fill.ts';
import { fitPowerLaw } from './scale/fit.ts';
import { measureDistributionGc, measureGc } from './scale/gc.ts';
import { evaluateScaleGoals, seriesValue } from './scale/goals.ts';
import { MAX_HOLD_UPLOADS, claimIdOf, fillHold } from './scale/hold-fill.ts';
import { measureJanitor } from './scale/janitor.ts';
import { renderScaleCharts, renderScaleReport, SCALE_MARKERS } from './scale/report.ts';
import { measureRequests } from './scale/requests.ts';
import { SERIES, scaleReportSchema, type ScaleReport, type ScaleRun, type SeriesFits } from './scale/schema.ts';
import { pushPullImage } from './workloads/pull.ts';

const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const log = (line: string) => console.error(`[bench:scale] ${new Date().toISOString().slice(11, 19)} ${line}`);

function option(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index === -1 ? undefined : process.argv[index + 1];
}

function numbers(text: string): number[] {
  return text.split(',').map((part) => {
    const value = Number(part.trim());
    if (!Number.isSafeInteger(value) || value < 10) throw new Error(`not a size: ${part} (sizes are whole numbers ≥ 10, e.g. 1e3)`);
    return value;
  });
}

const quick = process.argv.includes('--quick');
const settings = {
  connections: 16,
  requests: Number(option('--requests') ?? (quick ? 100 : 2000)),
  warmup: quick ? 10 : 100,
  rounds: Number(option('--rounds') ?? (quick ? 1 : 3)),
  sizes: numbers(option('--sizes') ?? (quick ? '1e3,1e4' : '1e3,1e4,1e5,1e6')),
  metadata: (option('--metadata') ?? 'postgres,sqlite').split(',').map((m) => {
    if (m !== 'postgres' && m !== 'sqlite') throw new Error(`--metadata: postgres or sqlite, not ${m}`);
    return m;
  }) as ('postgres' | 'sqlite')[],
  sqliteMax: Number(option('--sqlite-max') ?? (quick ? 1e3 : 1e5)),
  distributionSizes: numbers(option('--distribution-sizes') ?? (quick ? '1e3' : '1e4,1e5')),
  /** Upload sessions in the hold: min(N, this); creating objects in MinIO bounds it. */
  holdMaxUploads: Number(option('--hold-max') ?? (quick ? 200 : MAX_HOLD_UPLOADS)),
};
const idleUploads = { count: Number(option('--idle-uploads') ?? (quick ? 20 : 1000)), concurrency: 16, idleSeconds: quick ? 1 : 10 };
const out = option('--out') ?? path.join(root, 'bench', 'results', quick ? 'scale-quick.json' : 'scale.json');

/** dist/ as built by `npm ci` (its prepare script) when no source is newer; else built now. */
function builtCli(): string {
  const entry = path.join(root, 'dist', 'cli', 'main.js');
  const newest = (dir: string): number =>
    Math.max(0, ...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(path.join(dir, e.name)) : statSync(path.join(dir, e.name)).mtimeMs)));
  let built = 0;
  try {
    built = statSync(entry).mtimeMs;
  } catch {
    // not built yet
  }
  if (built < newest(path.join(root, 'src'))) {
    log('building dist/ (older than src/)');
    execFileSync('npm', ['run', 'build'], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return entry;
}

async function runSize(minio: RunningMinio, cli: string, metadata: 'postgres' | 'sqlite', n: number): Promise<ScaleRun> {
  const began = performance.now();
  const prefix = `scale-${metadata}-${n}-${randomUUID().slice(0, 8)}`;
  const url = metadata === 'postgres' ? await (await sharedPostgres()).createDatabase() : undefined;
  const stack = await startStack({
    minio,
    prefix,
    cli,
    auth: 'none',
    metadata: url ? { kind: 'postgres', url } : { kind: 'sqlite' },
    limits: { maxOpenUploadsPerDid: 10_000_000, maxTagsPerRepository: 4_000_000 },
    gc: { did: STACK_USER.did, graceSeconds: 0, intervalSeconds: 0 },
    hold: { janitorIntervalSeconds: 0 },
  });
  try {
    const base = stack.registries[0] as string;
    const registryPid = stack.processes[1]?.pid as number;
    let started = performance.now();
    const images = { app: await pushPullImage(base, APP), big: await pushPullImage(base, BIG) };
    const pushSeconds = (performance.now() - started) / 1000;
    started = performance.now();
    const db = await openDatabase(url ? { kind: 'postgres', url } : { kind: 'sqlite', path: path.join(stack.dir, 'registry.db') });
    try {
      await fillRegistry(db, n, { did: STACK_USER.did });
    } finally {
      await db.close();
    }
    const sqlSeconds = (performance.now() - started) / 1000;
    const hold = await fillHold(minio, { prefix, n, did: STACK_USER.did, claimId: await claimIdOf(minio, prefix, images.big.layerDigest), blobs: true, maxUploads: settings.holdMaxUploads });
    log(`${metadata} N=${n}: filled (SQL ${sqlSeconds.toFixed(1)} s, ${hold.keys} MinIO keys ${hold.seconds.toFixed(1)} s)`);
    const afterFillMiB = await currentRssMiB(registryPid);
    const requests = await measureRequests(base, n, images, settings);
    const afterRequestsMiB = await currentRssMiB(registryPid);
    log(`${metadata} N=${n}: requests measured`);
    const idle = await idleUploadsRss(base, registryPid, idleUploads);
    const gc = await measureGc(stack);
    log(`${metadata} N=${n}: GC dry run ${gc.dryRun.seconds.toFixed(2)} s, pass ${gc.pass.seconds.toFixed(2)} s (${gc.pass.deletedBlobs} blobs), idle ${gc.idle.seconds.toFixed(2)} s`);
    const janitor = await measureJanitor(stack);
    log(`${metadata} N=${n}: janitor ${janitor.wallSeconds.toFixed(2)} s ${JSON.stringify(janitor.result)}`);
    return {
      metadata,
      n,
      fill: { pushSeconds, sqlSeconds, hold },
      requests,
      gc,
      janitor,
      rss: { afterFillMiB, afterRequestsMiB, idleUploads: idle },
      seconds: (performance.now() - began) / 1000,
    };
  } finally {
    await stack.stop();
  }
}

function fits(runs: ScaleRun[]): ScaleReport['fits'] {
  const result: ScaleReport['fits'] = {};
  for (const metadata of settings.metadata) {
    const mine = runs.filter((run) => run.metadata === metadata);
    if (mine.length === 0) continue;
    result[metadata] = Object.fromEntries(
      SERIES.map((name) => {
        const fit = fitPowerLaw(mine.map((run) => ({ n: run.n, y: seriesValue(run, name) })));
        const known = (value: number) => (Number.isFinite(value) ? value : null);
        return [name, { exponent: known(fit.exponent), r2: known(fit.r2), ratio: known(fit.ratio) }];
      }),
    ) as SeriesFits;
  }
  return result;
}

/**
 * Each size gets a MinIO of its own, removed after it: on one shared server
 * the objects of every earlier size (about 464,000 under the last SQLite one)
 * would sit under the later, larger sizes, which run on the same CPUs.
 */
async function withOwnMinio<T>(use: (minio: RunningMinio) => Promise<T>): Promise<T> {
  const minio = await startMinio();
  try {
    return await use(minio);
  } finally {
    await minio.stop();
  }
}

try {
  const cli = builtCli();
  const runs: ScaleRun[] = [];
  for (const metadata of settings.metadata) {
    for (const n of settings.sizes.filter((size) => metadata === 'postgres' || size <= settings.sqliteMax)) {
      log(`${metadata} N=${n}`);
      const run = await withOwnMinio((minio) => runSize(minio, cli, metadata, n));
      log(`${metadata} N=${n}: ${run.seconds.toFixed(0)} s in all`);
      runs.push(run);
      // So that a long run that fails later keeps what it measured.
      await writeFile(`${out}.partial`, `${JSON.stringify({ settings, runs }, null, 2)}\n`);
    }
  }
  const distributionGc: ScaleReport['distributionGc'] = [];
  for (const n of settings.distributionSizes) {
    log(`distribution garbage-collect, N=${n}`);
    const figures = await withOwnMinio((minio) => measureDistributionGc(minio, n, `scale-distribution-${n}-${randomUUID().slice(0, 8)}`));
    const holdfast = runs.find((run) => run.metadata === 'postgres' && run.n === n)?.gc.pass.wallSeconds ?? null;
    distributionGc.push({ ...figures, holdfastPassWallSeconds: holdfast, ratio: holdfast ? figures.pass.wallSeconds / holdfast : null });
    log(`distribution N=${n}: fill ${figures.fillSeconds.toFixed(1)} s, dry run ${figures.dryRun.wallSeconds.toFixed(1)} s, pass ${figures.pass.wallSeconds.toFixed(1)} s`);
  }
  const partial = { runs, fits: fits(runs), distributionGc };
  const report: ScaleReport = scaleReportSchema.parse({
    generatedAt: new Date().toISOString(),
    quick,
    machine: machineInfo(),
    settings,
    ...partial,
    goals: evaluateScaleGoals(partial),
  });
  await mkdir(path.dirname(out), { recursive: true });
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  await rm(`${out}.partial`, { force: true });
  log(`wrote ${out}`);
  if (!quick && !process.argv.includes('--no-docs')) {
    const docPath = path.join(root, 'docs', 'BENCHMARKS.md');
    const document = await readFile(docPath, 'utf8').catch(() => '# Benchmarks\n');
    await writeFile(docPath, spliceReport(document, renderScaleReport(report), SCALE_MARKERS));
    for (const [name, svg] of Object.entries(renderScaleCharts(report))) await writeFile(path.join(root, 'docs', name), svg);
  }
  console.log(renderScaleReport(report));
} finally {
  await mochaGlobalTeardown();
}
