import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { generateSigningKey } from '../support/hold-harness.ts';
import { cliNodeArgs } from '../support/stack.ts';

const CLI = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

describe('holdfast hold-janitor and quota', function () {
  it("runs one janitor pass against the hold's config and prints its result and time as JSON", async function () {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-janitor-cli-'));
    try {
      const keys = await generateSigningKey();
      await writeFile(path.join(dir, 'registry.pub'), keys.publicKey);
      await writeFile(
        path.join(dir, 'hold.yaml'),
        toYaml({
          identity: 'did:web:hold.test',
          owner: 'did:plc:alice0000000000000000',
          trustedIssuers: [{ issuer: 'did:web:registry.test', publicKeyFile: 'registry.pub' }],
          storage: { backend: 'fs', fs: { root: path.join(dir, 'data') } },
        }),
      );
      const result = spawnSync(process.execPath, [...cliNodeArgs(CLI), 'hold-janitor', '--config', path.join(dir, 'hold.yaml')], { encoding: 'utf8', timeout: 60_000 });
      expect(result.status, result.stderr).to.equal(0);
      const report = JSON.parse(result.stdout) as Record<string, unknown>;
      expect(report).to.include({ purged: 0, skipped: 0 });
      expect(report.seconds).to.be.a('number').and.at.least(0);
      // `quota` opens the same hold and refuses in one line when the config has no quotas.
      const quota = spawnSync(process.execPath, [...cliNodeArgs(CLI), 'quota', '--config', path.join(dir, 'hold.yaml')], { encoding: 'utf8', timeout: 60_000 });
      expect([quota.status, quota.stdout]).to.deep.equal([2, '']);
      expect(quota.stderr).to.contain('the hold config has no quotas section').and.not.contain('    at ');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
