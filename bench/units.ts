/** Byte sizes as the benchmarks name them. */
export const MiB = 1024 * 1024;

/** "256 MiB", "1 GiB". */
export function size(bytes: number): string {
  return bytes >= 1024 * MiB ? `${bytes / (1024 * MiB)} GiB` : `${bytes / MiB} MiB`;
}
