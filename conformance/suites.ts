import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { cacheDir, isExecutable } from '../test/support/tools.ts';

/**
 * The OCI distribution-spec conformance suites, built from their Go module
 * with `go test -c` and cached under ~/.cache/holdfast/conformance.
 *
 * The module has no tagged versions of its own, so the pins are the module
 * proxy's pseudo-versions: the v1.1-era suite (ginkgo; OCI_ROOT_URL, the
 * 22 + 20 byte chunked push) and the current redesigned suite.
 */
export interface Suite {
  name: string;
  version: string;
  /** Environment for a run against `registry` (host:port) as `user`. */
  env(options: { url: string; user: string; password: string; namespace: string; crossmount: string; resultsDir: string }): Record<string, string>;
}

const MODULE = 'github.com/opencontainers/distribution-spec/conformance';

export const SUITES: readonly Suite[] = [
  {
    name: 'v1.1',
    version: 'v0.0.0-20231101194043-f2182352d4cc',
    env: ({ url, user, password, namespace, crossmount, resultsDir }) => ({
      OCI_ROOT_URL: url,
      OCI_NAMESPACE: namespace,
      OCI_CROSSMOUNT_NAMESPACE: crossmount,
      OCI_USERNAME: user,
      OCI_PASSWORD: password,
      OCI_TEST_PULL: '1',
      OCI_TEST_PUSH: '1',
      OCI_TEST_CONTENT_DISCOVERY: '1',
      OCI_TEST_CONTENT_MANAGEMENT: '1',
      OCI_AUTOMATIC_CROSSMOUNT: 'true',
      OCI_HIDE_SKIPPED_WORKFLOWS: '0',
      OCI_DEBUG: '0',
      OCI_REPORT_DIR: resultsDir,
    }),
  },
  {
    name: 'current',
    version: 'v0.0.0-20260831232431-97274622c111',
    env: ({ url, user, password, namespace, crossmount, resultsDir }) => ({
      OCI_REGISTRY: new URL(url).host,
      OCI_TLS: 'disabled',
      OCI_REPO1: namespace,
      OCI_REPO2: crossmount,
      OCI_USERNAME: user,
      OCI_PASSWORD: password,
      OCI_RESULTS_DIR: resultsDir,
      OCI_API_BLOBS_UPLOAD_CANCEL: 'true',
      // Blob GETs are redirected to S3, whose response has no Docker-Content-Digest.
      OCI_API_BLOBS_DIGEST_HEADER: 'false',
      OCI_API_MANIFESTS_DIGEST_HEADER: 'true',
      OCI_LOG: 'warn',
    }),
  },
];

/** The suite's test binary, building it on first use. */
export async function suiteBinary(suite: Suite): Promise<string> {
  const dir = path.join(cacheDir(), 'conformance', suite.version);
  const binary = path.join(dir, 'conformance.test');
  if (await isExecutable(binary)) return binary;
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'go.mod'), 'module holdfast-conformance\n\ngo 1.22\n');
  const env = { ...process.env, GOPATH: path.join(cacheDir(), 'gopath'), GOFLAGS: '-modcacherw', CGO_ENABLED: '0' };
  console.error(`[conformance] building ${MODULE}@${suite.version} (first run only)`);
  await run('go', ['get', '-t', `${MODULE}@${suite.version}`], dir, env);
  await run('go', ['test', '-c', MODULE, '-o', binary], dir, env);
  return binary;
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-6000)));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`${command} ${args.join(' ')} exited ${code}\n${stderr}`))));
  });
}
