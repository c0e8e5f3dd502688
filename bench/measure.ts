/** Measuring helpers: medians, process memory and I/O from /proc, hold request counts. */
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import { holdCalls } from '../test/support/hold-metrics.ts';

export function median(values: number[]): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] as number) : ((sorted[middle - 1] as number) + (sorted[middle] as number)) / 2;
}

/** Rounds for the report: 3 significant-ish decimals, never -0. */
export function round(value: number, decimals = 3): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor + 0;
}

async function procStatusKiB(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  return Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(status)?.[1] ?? 0);
}

/** The peak resident set of a process over its whole life (VmHWM), in MiB; 0 if it is gone. */
export async function lifetimePeakRssMiB(pid: number): Promise<number> {
  return (await procStatusKiB(pid, 'VmHWM')) / 1024;
}

/**
 * Samples a process's resident set every `intervalMs` until stopped; the
 * peak is of this window only (VmHWM would cover the process's whole life).
 */
export function sampleRss(pid: number, intervalMs = 20): { stop(): Promise<number> } {
  let peakKiB = 0;
  let running = true;
  const loop = (async () => {
    while (running) {
      peakKiB = Math.max(peakKiB, await procStatusKiB(pid, 'VmRSS'));
      await new Promise((resolve) => setTimeout(resolve, intervalMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      peakKiB = Math.max(peakKiB, await procStatusKiB(pid, 'VmRSS'));
      return peakKiB / 1024;
    },
  };
}

/** Clock ticks per second of /proc/<pid>/stat's times: USER_HZ, 100 on Linux. */
const USER_HZ = 100;

/** CPU time a process (all its threads) has used, user and kernel, in ms. */
export async function processCpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // The fields after the command name, which may hold spaces, start at the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / USER_HZ;
}

/** Bytes a process has read and written through any file, pipe or socket. */
export async function processIoBytes(pid: number): Promise<number> {
  const io = await readFile(`/proc/${pid}/io`, 'utf8');
  const field = (name: string) => Number(new RegExp(`${name}:\\s+(\\d+)`).exec(io)?.[1] ?? Number.NaN);
  return field('rchar') + field('wchar');
}

/** API requests the hold has answered (its own /metrics and /healthz excluded). */
export async function holdRequestCount(holdUrl: string): Promise<number> {
  let total = 0;
  for (const count of (await holdCalls(holdUrl)).requests.values()) total += count;
  return total;
}

/**
 * Polls a process's VmHWM every `intervalMs` until it exits: its whole
 * life's peak resident set, in MiB (the last reading before /proc lost it).
 */
export async function peakRssUntilExit(pid: number, exited: Promise<unknown>, intervalMs = 20): Promise<number> {
  let peakKiB = 0;
  let running = true;
  const stop = () => {
    running = false;
  };
  exited.then(stop, stop);
  while (running) {
    peakKiB = Math.max(peakKiB, await procStatusKiB(pid, 'VmHWM'));
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  return peakKiB / 1024;
}

/** The machine a report was measured on. */
export function machineInfo(): { cores: number; cpuModel: string; memoryGiB: number; node: string; os: string } {
  return {
    cores: os.cpus().length,
    cpuModel: os.cpus()[0]?.model.trim() ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    os: `${os.type()} ${os.release()}`,
  };
}
