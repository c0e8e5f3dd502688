/**
 * `npm run bench` runs every benchmark and writes bench/results/latest.json,
 * the generated part of docs/BENCHMARKS.md and docs/benchmarks.svg.
 * `npm run bench -- --quick` runs small sizes, one round, and writes only
 * bench/results/quick.json. `npm run bench -- --report-only` redraws the doc
 * table and chart from latest.json. Benchmarks report figures; they never
 * assert speed.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { mochaGlobalTeardown } from '../test/support/global-fixtures.ts';
import { machineInfo } from './measure.ts';
import { drawRatioChart } from './chart.ts';
import { runComparison, type ComparisonResult } from './compare.ts';
import { runDriverMemory, type DriverMemoryResult } from './driver-memory.ts';
import { evaluateGoals, type Goal } from './goals.ts';
import { runLoad, type LoadResult } from './load.ts';
import { runPages, type PagesResult } from './pages.ts';
import { runEvents, type EventsResult } from './events.ts';
import { renderReport, spliceReport } from './report.ts';
import { runResumeRehash, type ResumeRehashResult } from './resume-rehash.ts';
import { benchReportSchema } from './schema.ts';

export interface BenchReport {
  generatedAt: string;
  quick: boolean;
  machine: { cores: number; cpuModel: string; memoryGiB: number; node: string; os: string };
  comparison: ComparisonResult;
  goals: Goal[];
  driverMemory: DriverMemoryResult;
  resumeRehash: ResumeRehashResult;
  load: LoadResult;
  /** Web page render times on a grown registry (absent from reports made before the pages). */
  pages?: PagesResult;
  /** Webhooks: delivery rate, a dead receiver's queue, push time on and off (absent from reports made before events). */
  events?: EventsResult;
}

const quick = process.argv.includes('--quick');
const root = path.dirname(path.dirname(fileURLToPath(import.meta.url)));
const log = (line: string) => console.error(`[bench] ${line}`);

async function publish(report: BenchReport): Promise<void> {
  const docPath = path.join(root, 'docs', 'BENCHMARKS.md');
  const document = await readFile(docPath, 'utf8').catch(() => '# Benchmarks\n');
  await writeFile(docPath, spliceReport(document, renderReport(report)));
  await writeFile(path.join(root, 'docs', 'benchmarks.svg'), drawRatioChart(report.goals, 'Holdfast vs direct S3 and CNCF distribution'));
}

if (process.argv.includes('--report-only')) {
  const saved: unknown = JSON.parse(await readFile(path.join(root, 'bench', 'results', 'latest.json'), 'utf8'));
  benchReportSchema.parse(saved);
  const report = saved as BenchReport;
  await publish(report);
  process.exit(0);
}

try {
  log('comparison: direct S3, holdfast, distribution on one MinIO');
  const comparison = await runComparison({ quick, log });
  log('driver memory');
  const driverMemory = await runDriverMemory({ quick });
  log('resume re-hash');
  const resumeRehash = await runResumeRehash({ quick });
  log('load');
  const load = await runLoad({ quick });
  log('web pages');
  const pages = await runPages({ quick, log });
  const events = await runEvents({ quick, log });
  const report: BenchReport = {
    generatedAt: new Date().toISOString(),
    quick,
    machine: machineInfo(),
    comparison,
    goals: evaluateGoals(comparison),
    driverMemory,
    resumeRehash,
    load,
    pages,
    events,
  };
  benchReportSchema.parse(report);
  const resultsDir = path.join(root, 'bench', 'results');
  await mkdir(resultsDir, { recursive: true });
  await writeFile(path.join(resultsDir, quick ? 'quick.json' : 'latest.json'), `${JSON.stringify(report, null, 2)}\n`);
  if (!quick) await publish(report);
  console.log(renderReport(report));
} finally {
  await mochaGlobalTeardown();
}
