import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { findOnPath, findOrBuildGoTool } from './tools.ts';

const run = promisify(execFile);

/** Pinned client versions, built with `go install` into ~/.cache/holdfast/bin. */
export const CRANE = { name: 'crane', envVar: 'CRANE_BIN', module: 'github.com/google/go-containerregistry/cmd/crane', version: 'v0.22.1' };
export const ORAS = { name: 'oras', envVar: 'ORAS_BIN', module: 'oras.land/oras/cmd/oras', version: 'v1.3.6' };

/** skopeo from Debian's packages, installed when missing. */
export async function skopeoBinary(): Promise<string> {
  const found = process.env.SKOPEO_BIN ?? (await findOnPath('skopeo'));
  if (found) return found;
  console.error('[harness] installing skopeo from Debian packages (first run only)');
  await run('sh', ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq skopeo'], { maxBuffer: 16 * 1024 * 1024 });
  const installed = await findOnPath('skopeo');
  if (!installed) throw new Error('apt-get installed skopeo but it is not on PATH');
  return installed;
}

export const craneBinary = () => findOrBuildGoTool(CRANE);
export const orasBinary = () => findOrBuildGoTool(ORAS);

export async function runTool(binary: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    const { stdout } = await run(binary, args, { env, maxBuffer: 64 * 1024 * 1024, timeout: 300_000 });
    return stdout;
  } catch (err) {
    const failure = err as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${binary} ${args.join(' ')} failed: ${failure.message}\n${failure.stderr ?? ''}`);
  }
}
