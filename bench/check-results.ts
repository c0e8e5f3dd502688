/**
 * `node --import tsx bench/check-results.ts <file>`: exits non-zero unless the
 * benchmark report has every field (CI runs it on the --quick report).
 */
import { readFile } from 'node:fs/promises';
import { benchReportSchema } from './schema.ts';

const file = process.argv[2] ?? 'bench/results/quick.json';
const parsed = benchReportSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
if (!parsed.success) {
  console.error(`${file} is incomplete:\n${parsed.error.issues.map((issue) => `  ${issue.path.join('.')}: ${issue.message}`).join('\n')}`);
  process.exit(1);
}
// Optional only so that reports made before the web pages and events still parse; a new report has them.
const missing = (['pages', 'events'] as const).filter((section) => !parsed.data[section]);
if (missing.length > 0) {
  console.error(`${file} is incomplete:\n${missing.map((section) => `  ${section}: missing`).join('\n')}`);
  process.exit(1);
}
console.log(`${file}: every field present (${parsed.data.goals.filter((goal) => goal.met).length} of ${parsed.data.goals.length} targets met; not a CI criterion)`);
