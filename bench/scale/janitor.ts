/** One pass of the hold's janitor (`holdfast hold-janitor`) over the filled uploads: its report, wall time and peak RSS. */
import type { RunningStack } from '../../test/support/stack.ts';
import { peakRssUntilExit } from '../measure.ts';

export interface JanitorFigure {
  seconds: number;
  wallSeconds: number;
  peakRssMiB: number;
  /** What the pass reported, as it reported it (purged, skipped, …). */
  result: Record<string, number>;
}

export async function measureJanitor(stack: RunningStack): Promise<JanitorFigure> {
  const started = performance.now();
  const { pid, done } = stack.spawnHoldfast(['hold-janitor'], 'hold');
  const [peakRssMiB, output] = await Promise.all([peakRssUntilExit(pid, done), done]);
  const wallSeconds = (performance.now() - started) / 1000;
  const { seconds, ...result } = JSON.parse(output) as Record<string, number>;
  return { seconds: seconds as number, wallSeconds, peakRssMiB, result };
}
