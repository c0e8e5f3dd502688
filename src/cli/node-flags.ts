/**
 * Node flags the long-running commands run with. `bin/holdfast.js` starts
 * Node again with any that are missing (`HOLDFAST_NODE_FLAGS=off` stops it),
 * and the test and benchmark stacks pass them themselves.
 *
 * `--initial-old-space-size`: a registry allocates every uploaded byte once
 * more, as the HTTP parser's body chunks, in ArrayBuffers outside V8's heap.
 * V8 counts them against an old generation sized from the ~20 MB the process
 * keeps live, and with its default heuristics that starts a full mark-compact
 * every two or three 8 MiB PATCHes, although the chunks die young. An old
 * generation configured to start at 64 MB leaves them to the cheap scavenges.
 * Measured on 256 MiB pushed in 8 MiB PATCHes (docs/BENCHMARKS.md): 60–71
 * mark-compacts in the registry became 1 on Node 20, and 71 became 12 on
 * Node 24 (counted at 96 MB; at 64 MB its CPU per PATCH was as low); the
 * registry's CPU per PATCH went from 36–46 ms to 18–27 ms.
 */
export const NODE_FLAGS: readonly string[] = ['--initial-old-space-size=64'];

/** The commands that serve until stopped: only they are worth a second start. */
export const LONG_RUNNING_COMMANDS: ReadonlySet<string> = new Set(['start', 'registry', 'hold']);

/** The flags of `NODE_FLAGS` that `execArgv` does not set, whatever value it gives them. */
export function missingNodeFlags(execArgv: readonly string[]): string[] {
  const name = (arg: string) => (arg.split('=')[0] as string).replaceAll('_', '-');
  const given = new Set(execArgv.map(name));
  return NODE_FLAGS.filter((flag) => !given.has(name(flag)));
}
