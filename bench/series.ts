/** Figures per target per round, and how the comparison summarises them. */
import { median, round } from './measure.ts';

/** `directSequential`: direct S3 one part at a time, each part as large as a PATCH: what a chunked client allows. */
export type TargetName = 'direct' | 'directSequential' | 'holdfast' | 'distribution' | 'distributionSameChunk';
export type PerTarget<T> = Partial<Record<TargetName, T>>;

/** A figure per target per round, its medians, and holdfast's ratios to the others taken round by round. */
export interface Series {
  unit: string;
  runs: PerTarget<number[]>;
  median: PerTarget<number>;
  /** holdfast ÷ the named target, the median of the per-round ratios. */
  holdfastRatio: PerTarget<number>;
}

export function series(unit: string, runs: PerTarget<number[]>): Series {
  const medians: PerTarget<number> = {};
  const ratios: PerTarget<number> = {};
  const ours = runs.holdfast ?? [];
  for (const [name, values] of Object.entries(runs) as [TargetName, number[]][]) {
    medians[name] = round(median(values));
    if (name !== 'holdfast' && values.length === ours.length) {
      ratios[name] = round(median(values.map((value, index) => (ours[index] as number) / value)));
    }
  }
  return { unit, runs: Object.fromEntries(Object.entries(runs).map(([name, values]) => [name, values.map((value) => round(value))])), median: medians, holdfastRatio: ratios };
}

export function record(runs: PerTarget<number[]>, name: TargetName, value: number): void {
  (runs[name] ??= []).push(value);
}

/** The order targets take within round `roundIndex`: rotated so none is always first. */
export function rotated<T>(items: T[], roundIndex: number): T[] {
  const shift = roundIndex % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}
