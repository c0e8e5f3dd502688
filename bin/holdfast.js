#!/usr/bin/env node
// The holdfast CLI, run from the compiled JavaScript in dist/. `npm ci` builds
// it (the `prepare` script); after editing src/, run `npm run build` again, or
// `npm run dev` to run the TypeScript sources through tsx (a dev dependency).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error(`holdfast: ${main.pathname} is missing; build it with \`npm run build\` (npm ci does this).`);
  process.exit(1);
}

// The long-running commands want Node flags that only a new start can set (dist/cli/node-flags.js says why).
// Not on Windows, where a second start would open a console of its own and could not pass signals on.
const { LONG_RUNNING_COMMANDS, missingNodeFlags } = await import(new URL('../dist/cli/node-flags.js', import.meta.url).href);
const relaunch = LONG_RUNNING_COMMANDS.has(process.argv[2]) && process.env.HOLDFAST_NODE_FLAGS !== 'off' && process.platform !== 'win32';
const missing = relaunch ? missingNodeFlags(process.execArgv) : [];
if (missing.length === 0) {
  await import(main.href);
} else {
  const args = [...process.execArgv, ...missing, fileURLToPath(import.meta.url), ...process.argv.slice(2)];
  // Where Node has execve (22.15, 23.11 and later) this process is replaced; the environment is passed
  // explicitly, as some of those releases started the new one with none when it was left out.
  if (typeof process.execve === 'function') process.execve(process.execPath, [process.execPath, ...args], process.env);
  // Elsewhere it stays as a parent that passes signals on. The child has its own process group, so a
  // terminal's Ctrl-C reaches it once, through here; the IPC channel tells it when this process is gone.
  const child = spawn(process.execPath, args, { stdio: ['inherit', 'inherit', 'inherit', 'ipc'], detached: true });
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'];
  for (const signal of signals) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => {
    console.error(`holdfast: could not start Node again with ${missing.join(' ')}: ${err.message}`);
    process.exit(1);
  });
  child.on('exit', (code, signal) => {
    if (code !== null) process.exit(code);
    for (const name of signals) process.removeAllListeners(name);
    process.kill(process.pid, signal ?? 'SIGTERM');
  });
}
