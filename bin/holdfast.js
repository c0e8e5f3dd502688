#!/usr/bin/env node
// The holdfast CLI, run from the compiled JavaScript in dist/. `npm ci` builds
// it (the `prepare` script); after editing src/, run `npm run build` again, or
// `npm run dev` to run the TypeScript sources through tsx (a dev dependency).
import { existsSync } from 'node:fs';

const main = new URL('../dist/cli/main.js', import.meta.url);
if (!existsSync(main)) {
  console.error(`holdfast: ${main.pathname} is missing; build it with \`npm run build\` (npm ci does this).`);
  process.exit(1);
}
await import(main.href);
