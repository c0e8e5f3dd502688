import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ServiceTokenSigner } from '../../src/core/service-token.ts';
import { HoldClient } from '../../src/driver/hold-client.ts';
import { DriverError, type DriverErrorCode } from '../../src/driver/types.ts';
import { alreadyExists, toVerdaccioError, type VerdaccioError } from '../../src/verdaccio/errors.ts';
import HoldfastStorage, { NPM_SERVICE } from '../../src/verdaccio/index.ts';
import { sha256 } from '../support/bytes.ts';
import { AUDIENCE, DIDS, ISSUER, startTestHold, type TestHold } from '../support/hold-harness.ts';
import { pluginOptions } from './plugin-options.ts';
import { publishTarball, readTarball } from './tarballs.ts';

/** What an npm client gets for each driver error: Verdaccio tests `code` (ENOENT, EEXISTS) and answers `status`. */
const EXPECTED: Record<DriverErrorCode, { code: string; status: number }> = {
  BLOB_UNKNOWN: { code: 'ENOENT', status: 404 },
  BLOB_UPLOAD_UNKNOWN: { code: 'EUNAVAILABLE', status: 503 },
  BLOB_UPLOAD_INVALID: { code: 'EUNAVAILABLE', status: 503 },
  DIGEST_INVALID: { code: 'EUNAVAILABLE', status: 503 },
  SIZE_INVALID: { code: 'EUNAVAILABLE', status: 503 },
  RANGE_INVALID: { code: 'EUNAVAILABLE', status: 503 },
  BLOB_TOO_LARGE: { code: 'ETOOLARGE', status: 413 },
  BUSY: { code: 'ETOOMANY', status: 429 },
  UNAVAILABLE: { code: 'EUNAVAILABLE', status: 503 },
  DENIED: { code: 'EINTERNAL', status: 500 },
  UNSUPPORTED: { code: 'EINTERNAL', status: 500 },
  INTERNAL: { code: 'EINTERNAL', status: 500 },
};

describe('Verdaccio plugin: driver errors as Verdaccio errors', function () {
  for (const [driverCode, expected] of Object.entries(EXPECTED) as [DriverErrorCode, { code: string; status: number }][]) {
    it(`${driverCode} is ${expected.status} ${expected.code}, naming the tarball and keeping the cause`, function () {
      const cause = new DriverError(driverCode, 'from the hold');
      const mapped = toVerdaccioError(cause, 'tarball a-1.0.0.tgz');
      expect({ code: mapped.code, status: mapped.status, statusCode: mapped.statusCode }).to.deep.equal({ ...expected, statusCode: expected.status });
      expect(mapped.message).to.match(/^tarball a-1\.0\.0\.tgz: /);
      expect(mapped.cause).to.equal(cause);
    });
  }

  it("passes Verdaccio's own errors through, and makes anything else a 500", function () {
    const conflict = alreadyExists('tarball a-1.0.0.tgz');
    expect(toVerdaccioError(conflict, 'tarball a-1.0.0.tgz')).to.equal(conflict);
    const other = toVerdaccioError(new TypeError('boom'), 'tarball a-1.0.0.tgz');
    expect({ code: other.code, status: other.status }).to.deep.equal({ code: 'EINTERNAL', status: 500 });
  });
});

describe('Verdaccio plugin: errors from a real hold (hold on fs)', function () {
  let hold: TestHold;
  let work: string;
  const plugins: HoldfastStorage[] = [];

  before(async function () {
    hold = await startTestHold('fs');
    work = await mkdtemp(path.join(os.tmpdir(), 'holdfast-verdaccio-errors-'));
    await writeFile(path.join(work, 'driver.key'), hold.keys.privateKey, { mode: 0o600 });
  });
  after(async function () {
    for (const plugin of plugins) await plugin.close();
    await hold?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  function plugin(did: string): HoldfastStorage {
    const made = new HoldfastStorage(
      {
        did,
        metadata: { kind: 'sqlite', path: `./${did.replace(/\W/g, '_')}.db` },
        driver: { hold: { url: hold.url, audience: AUDIENCE }, issuer: ISSUER, privateKeyFile: './driver.key' },
      },
      pluginOptions(path.join(work, 'config.yaml')),
    );
    plugins.push(made);
    return made;
  }

  it('a recorded tarball whose bytes are gone from the hold reads as 404 ENOENT (it was a raw DriverError)', async function () {
    const storage = plugin(DIDS.owner).getPackageStorage('vanished');
    const bytes = randomBytes(2048);
    await publishTarball(storage, 'vanished-1.0.0.tgz', bytes);
    const behindItsBack = new HoldClient({ url: hold.url, audience: AUDIENCE, signer: new ServiceTokenSigner({ issuer: ISSUER, service: NPM_SERVICE, privateKey: hold.keys.privateKey }) });
    try {
      expect((await behindItsBack.release(DIDS.owner, sha256(bytes))).deleted).to.equal(true);
    } finally {
      await behindItsBack.close();
    }
    const err = (await readTarball(storage, 'vanished-1.0.0.tgz').catch((e: unknown) => e)) as VerdaccioError;
    expect({ code: err.code, status: err.status }).to.deep.equal({ code: 'ENOENT', status: 404 });
    expect(err.message).to.include('vanished-1.0.0.tgz');
  });

  it('a plugin whose DID the hold does not serve gets 500 EINTERNAL on publish, not a raw DENIED', async function () {
    const storage = plugin(DIDS.stranger).getPackageStorage('refused');
    const err = (await publishTarball(storage, 'refused-1.0.0.tgz', randomBytes(64)).catch((e: unknown) => e)) as VerdaccioError;
    expect({ code: err.code, status: err.status }).to.deep.equal({ code: 'EINTERNAL', status: 500 });
    expect(err.message).to.include("refused this server's credentials");
  });
});
