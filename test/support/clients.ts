import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { findOnPath, findOrBuildGoTool } from './tools.ts';

const run = promisify(execFile);

/** Pinned client versions, built with `go install` into ~/.cache/holdfast/bin. */
export const CRANE = { name: 'crane', envVar: 'CRANE_BIN', module: 'github.com/google/go-containerregistry/cmd/crane', version: 'v0.22.1' };
export const ORAS = { name: 'oras', envVar: 'ORAS_BIN', module: 'oras.land/oras/cmd/oras', version: 'v1.3.6' };

/** A tool from Debian's packages: `$envVar`, then PATH, else `apt-get install` it (first run only). */
export async function debianTool(options: { name: string; pkg: string; envVar: string }): Promise<string> {
  const found = process.env[options.envVar] ?? (await findOnPath(options.name));
  if (found) return found;
  console.error(`[harness] installing ${options.pkg} from Debian packages (first run only)`);
  await run('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${options.pkg}`], { maxBuffer: 16 * 1024 * 1024 });
  const installed = await findOnPath(options.name);
  if (!installed) throw new Error(`apt-get installed ${options.pkg} but ${options.name} is not on PATH`);
  return installed;
}

export const skopeoBinary = () => debianTool({ name: 'skopeo', pkg: 'skopeo', envVar: 'SKOPEO_BIN' });
/** Debian's Chromium, driven by playwright-core (which downloads no browser of its own). */
export const chromiumBinary = () => debianTool({ name: 'chromium', pkg: 'chromium', envVar: 'CHROMIUM_BIN' });
export const craneBinary = () => findOrBuildGoTool(CRANE);
export const orasBinary = () => findOrBuildGoTool(ORAS);

export async function runTool(binary: string, args: string[], env: NodeJS.ProcessEnv = process.env, cwd?: string): Promise<string> {
  try {
    const { stdout } = await run(binary, args, { env, cwd, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 });
    return stdout;
  } catch (err) {
    const failure = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${binary} ${args.join(' ')} failed: ${failure.message}\n${failure.stderr ?? ''}`);
  }
}
