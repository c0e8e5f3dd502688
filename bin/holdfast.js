#!/usr/bin/env node
// Runs the TypeScript sources directly (tsx); `npm run build` produces dist/ for
// deployments that prefer plain JavaScript: `node dist/cli/main.js`.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
