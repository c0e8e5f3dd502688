import { z } from 'zod';

/**
 * Sizes as people write them in config: a number of bytes, or a number with
 * a unit, decimal (`kB`, `MB`, `GB`, `TB`) or binary (`KiB`, `MiB`, `GiB`,
 * `TiB`): "5GB" is 5 × 10⁹ bytes, "5GiB" 5 × 2³⁰.
 */
const UNITS: Readonly<Record<string, number>> = {
  B: 1,
  kB: 1e3,
  KB: 1e3,
  MB: 1e6,
  GB: 1e9,
  TB: 1e12,
  KiB: 2 ** 10,
  MiB: 2 ** 20,
  GiB: 2 ** 30,
  TiB: 2 ** 40,
};

export const BYTE_SIZE = /^(\d+(?:\.\d+)?)\s*(B|kB|KB|MB|GB|TB|KiB|MiB|GiB|TiB)?$/;

export function parseByteSize(value: number | string): number | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  const match = BYTE_SIZE.exec(value.trim());
  if (!match) return undefined;
  const bytes = Math.round(Number(match[1]) * (UNITS[match[2] ?? 'B'] as number));
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** Decimal units with one decimal, as the message a person reads: "4.8 GB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value >= 100 ? Math.round(value) : Number(value.toFixed(1))} ${units[unit]}`;
}

/** A config size: bytes, or a number with a unit (see `parseByteSize`). */
export const byteSizeSchema = z.union([z.number().int().min(0), z.string()]).transform((value, context) => {
  const bytes = parseByteSize(value);
  if (bytes === undefined) {
    context.addIssue({ code: 'custom', message: 'a size is a number of bytes or a number with a unit: B, kB, MB, GB, TB, KiB, MiB, GiB, TiB' });
    return z.NEVER;
  }
  return bytes;
});
