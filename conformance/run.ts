/**
 * Runs the OCI conformance suites against the real stack: MinIO, a hold (S3
 * backend) and a registry (token auth, presigned redirects), each its own
 * process. Writes junit and HTML reports to conformance/results/<suite>/ and
 * a summary; exits non-zero on any failure.
 */
import { spawn } from 'node:child_process';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startS3Server } from '../test/support/s3-servers.ts';
import { STACK_USER, startStack } from '../test/support/stack.ts';
import { startProviderRulesProxy, type ProviderRules } from '../test/support/provider-rules-proxy.ts';
import { SUITES, suiteBinary } from './suites.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const resultsRoot = path.join(here, 'results');

interface SuiteSummary {
  suite: string;
  version: string;
  exitCode: number;
  tests: number;
  failures: number;
  skipped: number;
}

async function main(): Promise<number> {
  const only = process.argv.slice(2).filter((arg) => !arg.startsWith('-'));
  const suites = SUITES.filter((suite) => only.length === 0 || only.includes(suite.name));
  const binaries = await Promise.all(suites.map((suite) => suiteBinary(suite)));
  await rm(resultsRoot, { recursive: true, force: true });
  // MinIO unless HOLDFAST_S3_SERVER names another real S3 server.
  const minio = await startS3Server();
  const summaries: SuiteSummary[] = [];
  try {
    for (const [index, suite] of suites.entries()) {
      // HOLDFAST_PROVIDER_RULES=r2|b2|storj puts the provider-rules proxy in
      // front of S3 and runs the hold and driver with that provider's profile.
      const rules = process.env.HOLDFAST_PROVIDER_RULES as ProviderRules | undefined;
      const rulesProxy = rules ? await startProviderRulesProxy(minio.endpoint, rules) : undefined;
      const stack = await startStack({
        minio,
        prefix: `conformance-${suite.name}`,
        ...(rulesProxy && rules ? { hold: { provider: rules, endpoint: rulesProxy.url, publicEndpoint: rulesProxy.url.replace('127.0.0.1', 'localhost') } } : {}),
      });
      try {
        const resultsDir = path.join(resultsRoot, suite.name);
        await mkdir(resultsDir, { recursive: true });
        const env = suite.env({
          url: stack.registries[0] as string,
          user: STACK_USER.username,
          password: STACK_USER.password,
          namespace: `${STACK_USER.handle}/conformance`,
          crossmount: `${STACK_USER.handle}/crossmount`,
          resultsDir,
        });
        const exitCode = await runSuite(binaries[index] as string, resultsDir, env);
        summaries.push({ suite: suite.name, version: suite.version, exitCode, ...(await junitCounts(resultsDir)) });
        if (rulesProxy && rulesProxy.refusals.length > 0) {
          console.error(`provider rules (${rules}) refused: ${JSON.stringify(rulesProxy.refusals.slice(0, 5))}`);
          summaries[summaries.length - 1]!.failures += rulesProxy.refusals.length;
        }
      } finally {
        await stack.stop();
        await rulesProxy?.close();
      }
    }
  } finally {
    await minio.stop();
  }
  await writeFile(path.join(resultsRoot, 'summary.json'), `${JSON.stringify(summaries, null, 2)}\n`);
  for (const summary of summaries) {
    const passed = summary.tests - summary.failures - summary.skipped;
    console.log(`conformance ${summary.suite} (${summary.version}): ${passed} passed, ${summary.failures} failed, ${summary.skipped} skipped of ${summary.tests}`);
  }
  const total = summaries.reduce(
    (sum, summary) => ({ passed: sum.passed + summary.tests - summary.failures - summary.skipped, failed: sum.failed + summary.failures, skipped: sum.skipped + summary.skipped }),
    { passed: 0, failed: 0, skipped: 0 },
  );
  console.log(`conformance: ${total.passed} passed, ${total.failed} failed, ${total.skipped} skipped`);
  return summaries.every((summary) => summary.exitCode === 0 && summary.failures === 0) ? 0 : 1;
}

function runSuite(binary: string, cwd: string, env: Record<string, string>): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(binary, [], { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const output: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => output.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => output.push(chunk));
    child.on('error', reject);
    child.on('exit', async (code) => {
      await writeFile(path.join(cwd, 'output.txt'), Buffer.concat(output));
      resolve(code ?? 1);
    });
  });
}

async function junitCounts(dir: string): Promise<{ tests: number; failures: number; skipped: number }> {
  for (const file of ['junit.xml', path.join('results', 'junit.xml')]) {
    const xml = await readFile(path.join(dir, file), 'utf8').catch(() => undefined);
    if (!xml) continue;
    const suite = /<testsuite\b[^>]*>/.exec(xml)?.[0] ?? '';
    const attribute = (name: string) => Number(new RegExp(`\\b${name}="(\\d+)"`).exec(suite)?.[1] ?? 0);
    return { tests: attribute('tests'), failures: attribute('failures') + attribute('errors'), skipped: attribute('skipped') + attribute('disabled') };
  }
  return { tests: 0, failures: 1, skipped: 0 };
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
