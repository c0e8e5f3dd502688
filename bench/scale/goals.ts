/** Issue 26's targets, evaluated against the runs and fits of one report. */
import { round } from '../measure.ts';
import { REQUEST_KINDS, REQUEST_LABELS } from './requests.ts';
import type { ScaleGoal, ScaleReport, ScaleRun, SeriesFits, SeriesName } from './schema.ts';

/** An exponent at most this is "does not grow with N": 10× the rows, ≤ 1.6× the cost. */
const FLAT_EXPONENT = 0.2;

function goal(id: string, label: string, kind: ScaleGoal['kind'], value: number | null | undefined, bound: ScaleGoal['bound'], limit: number): ScaleGoal {
  const known = value !== null && value !== undefined && Number.isFinite(value);
  return { id, label, kind, value: known ? round(value) : null, limit, bound, met: known && (bound === 'max' ? value <= limit : value >= limit) };
}

/** The value of a series in a run, by its dotted name. */
export function seriesValue(run: ScaleRun, name: SeriesName): number {
  if (name === 'rss.idleUploadsSettledMiB') return run.rss.idleUploads.settledRssMiB;
  const [head, ...rest] = name.split('.');
  let value: unknown = head && head in run.requests ? run.requests[head as keyof ScaleRun['requests']] : (run as Record<string, unknown>)[head as string];
  for (const key of rest) value = (value as Record<string, unknown> | undefined)?.[key];
  return typeof value === 'number' ? value : Number.NaN;
}

export function evaluateScaleGoals(report: Pick<ScaleReport, 'runs' | 'fits' | 'distributionGc'>): ScaleGoal[] {
  const goals: ScaleGoal[] = [];
  for (const [metadata, fits] of Object.entries(report.fits) as [string, SeriesFits][]) {
    const runs = report.runs.filter((run) => run.metadata === metadata).sort((a, b) => a.n - b.n);
    const first = runs[0];
    const last = runs[runs.length - 1];
    if (!first || !last || first === last) continue;
    const span = `${metadata}, N ${first.n.toExponential(0)} → ${last.n.toExponential(0)}`;
    for (const kind of REQUEST_KINDS) {
      goals.push(goal(`${metadata}.${kind}.p99`, `${REQUEST_LABELS[kind]} p99 (${span})`, 'ratio', last.requests[kind].p99Ms / first.requests[kind].p99Ms, 'max', 1.5));
    }
    const passPerCandidate = runs.map((run) => ({ n: run.n, y: run.gc.pass.seconds / Math.max(1, run.gc.pass.deletedBlobs) }));
    const perCandidateGrowth = Math.log((passPerCandidate[passPerCandidate.length - 1]?.y ?? Number.NaN) / (passPerCandidate[0]?.y ?? Number.NaN)) / Math.log(last.n / first.n);
    goals.push(goal(`${metadata}.gc.passPerCandidate`, `GC pass time per candidate, growth exponent in N (${span})`, 'exponent', perCandidateGrowth, 'max', FLAT_EXPONENT));
    goals.push(goal(`${metadata}.gc.idle`, `GC pass with nothing to do, growth exponent in N (${span})`, 'exponent', fits['gc.idle.seconds'].exponent, 'max', FLAT_EXPONENT));
    goals.push(goal(`${metadata}.gc.memory`, `GC pass peak RSS, largest ÷ smallest N (${span})`, 'ratio', last.gc.pass.peakRssMiB / first.gc.pass.peakRssMiB, 'max', 1.25));
    goals.push(goal(`${metadata}.janitor.time`, `Janitor pass time, growth exponent in N (${span})`, 'exponent', fits['janitor.wallSeconds'].exponent, 'max', FLAT_EXPONENT));
    goals.push(goal(`${metadata}.janitor.memory`, `Janitor peak RSS, largest ÷ smallest N (${span})`, 'ratio', last.janitor.peakRssMiB / first.janitor.peakRssMiB, 'max', 1.25));
  }
  const largest = [...report.distributionGc].sort((a, b) => b.n - a.n)[0];
  if (largest) goals.push(goal('gc.vsDistribution', `Distribution garbage-collect ÷ Holdfast GC pass, N ${largest.n.toExponential(0)}`, 'ratio', largest.ratio, 'min', 10));
  return goals;
}
