/**
 * The shape of bench/results/scale.json and scale-quick.json: every run
 * validates its report before writing, and CI checks the --quick one with
 * it (every field present, never a speed).
 */
import { z } from 'zod';
import { REQUEST_KINDS } from './requests.ts';

const figure = z.number();
const count = z.number().int().min(0);
/** A fitted figure that needs two sizes or more: null with fewer. */
const fitted = z.number().nullable();

const requestFigure = z.object({ p50Ms: figure, p99Ms: figure, rps: figure, requests: count, unexpected: count }).strict();
const gcRun = z.object({ seconds: figure, wallSeconds: figure, peakRssMiB: figure, deletedBlobs: count, deletedManifests: count, items: count }).strict();
const fit = z.object({ exponent: fitted, r2: fitted, ratio: fitted }).strict();
const metadata = z.enum(['postgres', 'sqlite']);

export const SERIES = [
  ...REQUEST_KINDS.map((kind) => `${kind}.p99Ms` as const),
  'gc.pass.seconds',
  'gc.pass.peakRssMiB',
  'gc.dryRun.seconds',
  'gc.idle.seconds',
  'gc.idle.peakRssMiB',
  'janitor.wallSeconds',
  'janitor.peakRssMiB',
  'rss.afterFillMiB',
  'rss.idleUploadsSettledMiB',
] as const;

export const scaleRunSchema = z
  .object({
    metadata,
    n: count.min(1),
    fill: z
      .object({
        pushSeconds: figure,
        sqlSeconds: figure,
        hold: z.object({ uploads: count, idle: count, orphans: count, unreferencedBlobs: count, keys: count, seconds: figure }).strict(),
      })
      .strict(),
    requests: z.record(z.enum(REQUEST_KINDS), requestFigure),
    gc: z.object({ dryRun: gcRun, pass: gcRun, idle: gcRun }).strict(),
    janitor: z.object({ seconds: figure, wallSeconds: figure, peakRssMiB: figure, result: z.record(z.string(), figure) }).strict(),
    rss: z
      .object({
        afterFillMiB: figure,
        afterRequestsMiB: figure,
        idleUploads: z.object({ uploads: count, peakRssMiB: figure, settledRssMiB: figure }).strict(),
      })
      .strict(),
    seconds: figure,
  })
  .strict();

export const scaleReportSchema = z
  .object({
    generatedAt: z.iso.datetime(),
    quick: z.boolean(),
    machine: z.object({ cores: count, cpuModel: z.string(), memoryGiB: count, node: z.string(), os: z.string() }).strict(),
    settings: z
      .object({ connections: count, requests: count, warmup: count, rounds: count, sizes: z.array(count).min(1), metadata: z.array(metadata).min(1), sqliteMax: count, distributionSizes: z.array(count), holdMaxUploads: count })
      .strict(),
    runs: z.array(scaleRunSchema).min(1),
    fits: z.partialRecord(metadata, z.object(Object.fromEntries(SERIES.map((name) => [name, fit]))).strict()),
    distributionGc: z.array(
      z
        .object({
          n: count,
          fillSeconds: figure,
          keys: count,
          dryRun: z.object({ wallSeconds: figure, peakRssMiB: figure }).strict(),
          pass: z.object({ wallSeconds: figure, peakRssMiB: figure }).strict(),
          /** Holdfast's GC pass at the same N (Postgres), wall time, and distribution's ÷ it. */
          holdfastPassWallSeconds: fitted,
          ratio: fitted,
        })
        .strict(),
    ),
    goals: z
      .array(
        z
          .object({ id: z.string().min(1), label: z.string().min(1), kind: z.enum(['ratio', 'exponent']), value: fitted, limit: figure, bound: z.enum(['max', 'min']), met: z.boolean() })
          .strict(),
      )
      .min(1),
  })
  .strict();

export type ScaleReport = z.infer<typeof scaleReportSchema>;
export type ScaleRun = z.infer<typeof scaleRunSchema>;
export type ScaleGoal = ScaleReport['goals'][number];
export type SeriesName = (typeof SERIES)[number];
export type SeriesFits = Record<SeriesName, z.infer<typeof fit>>;
