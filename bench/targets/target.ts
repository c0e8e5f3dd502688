import type { ChildProcess } from 'node:child_process';

/** A registry under benchmark: anonymous push and pull on `baseUrl`. */
export interface OciTarget {
  /** As it appears in the results: "holdfast", "distribution", … */
  name: string;
  baseUrl: string;
  /** The registry process, for its RSS. */
  pid: number;
  stop(): Promise<void>;
}

/** Waits until `url` answers at all (any status), or the process exits. */
export async function waitForHttp(url: string, child: ChildProcess, stderr: () => string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`${url}: process exited with ${child.exitCode}:\n${stderr()}`);
    try {
      await fetch(url);
      return;
    } catch {
      // not yet listening
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} did not answer within ${timeoutMs / 1000} s:\n${stderr()}`);
}
