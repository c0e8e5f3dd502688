/**
 * `node --import tsx bench/check-results.ts [--scale] <file>`: exits non-zero
 * unless the benchmark report has every field (CI runs it on the --quick
 * reports). `--scale`: a report of `npm run bench:scale`.
 */
import { readFile } from 'node:fs/promises';
import { benchReportSchema } from './schema.ts';
import { scaleReportSchema } from './scale/schema.ts';

const scale = process.argv.includes('--scale');
const file = process.argv.slice(2).find((arg) => !arg.startsWith('--')) ?? (scale ? 'bench/results/scale-quick.json' : 'bench/results/quick.json');
const json: unknown = JSON.parse(await readFile(file, 'utf8'));

function fail(issues: string[]): never {
  console.error(`${file} is incomplete:\n${issues.map((issue) => `  ${issue}`).join('\n')}`);
  process.exit(1);
}

if (scale) {
  const parsed = scaleReportSchema.safeParse(json);
  if (!parsed.success) fail(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  console.log(`${file}: every field present (${parsed.data.goals.filter((goal) => goal.met).length} of ${parsed.data.goals.length} targets met; not a CI criterion)`);
} else {
  const parsed = benchReportSchema.safeParse(json);
  if (!parsed.success) fail(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  // Optional only so that reports made before the web pages and events still parse; a new report has them.
  const missing = (['pages', 'events'] as const).filter((section) => !parsed.data[section]);
  if (missing.length > 0) fail(missing.map((section) => `${section}: missing`));
  console.log(`${file}: every field present (${parsed.data.goals.filter((goal) => goal.met).length} of ${parsed.data.goals.length} targets met; not a CI criterion)`);
}
