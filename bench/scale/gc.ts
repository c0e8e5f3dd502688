/**
 * GC passes as an operator runs them, `holdfast gc` beside the stack: a dry
 * run, a real pass (grace 0: marks and deletes the 1 % in one pass), then an
 * idle pass with nothing to do. Each: the pass's own seconds, the process's
 * wall time and its peak RSS. And distribution's `garbage-collect` on the
 * same content under its own prefix.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { RunningMinio } from '../../test/support/minio.ts';
import type { RunningStack } from '../../test/support/stack.ts';
import { peakRssUntilExit } from '../measure.ts';
import { spawnDistributionGc, writeDistributionConfig } from '../targets/distribution.ts';
import { fillDistribution } from './distribution-fill.ts';

export interface GcRunFigure {
  /** The pass's own time, from its report. */
  seconds: number;
  /** The process's, start to exit. */
  wallSeconds: number;
  peakRssMiB: number;
  deletedBlobs: number;
  deletedManifests: number;
  /** Candidates the report lists (a dry run: would delete or waiting). */
  items: number;
}

export interface GcFigures {
  dryRun: GcRunFigure;
  pass: GcRunFigure;
  idle: GcRunFigure;
}

async function holdfastGc(stack: RunningStack, dryRun: boolean): Promise<GcRunFigure> {
  const started = performance.now();
  const { pid, done } = stack.spawnHoldfast(['gc', ...(dryRun ? ['--dry-run'] : [])]);
  const [peakRssMiB, output] = await Promise.all([peakRssUntilExit(pid, done), done]);
  const wallSeconds = (performance.now() - started) / 1000;
  const report = JSON.parse(output) as { seconds: number; deletedBlobs: number; deletedManifests: number; items: unknown[] };
  return { seconds: report.seconds, wallSeconds, peakRssMiB, deletedBlobs: report.deletedBlobs, deletedManifests: report.deletedManifests, items: report.items.length };
}

export async function measureGc(stack: RunningStack): Promise<GcFigures> {
  const dryRun = await holdfastGc(stack, true);
  const pass = await holdfastGc(stack, false);
  const idle = await holdfastGc(stack, false);
  return { dryRun, pass, idle };
}

export interface DistributionGcFigure {
  n: number;
  fillSeconds: number;
  keys: number;
  dryRun: { wallSeconds: number; peakRssMiB: number };
  pass: { wallSeconds: number; peakRssMiB: number };
}

async function timedDistributionGc(configFile: string, dryRun: boolean): Promise<{ wallSeconds: number; peakRssMiB: number }> {
  const started = performance.now();
  const { pid, done } = await spawnDistributionGc(configFile, { dryRun });
  const [peakRssMiB] = await Promise.all([peakRssUntilExit(pid, done), done]);
  return { wallSeconds: (performance.now() - started) / 1000, peakRssMiB };
}

export async function measureDistributionGc(minio: RunningMinio, n: number, prefix: string): Promise<DistributionGcFigure> {
  const filled = await fillDistribution(minio, { prefix, n });
  const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-scale-distribution-'));
  try {
    const configFile = await writeDistributionConfig(minio, { dir, prefix });
    const dryRun = await timedDistributionGc(configFile, true);
    const pass = await timedDistributionGc(configFile, false);
    return { n, fillSeconds: filled.seconds, keys: filled.keys, dryRun, pass };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
