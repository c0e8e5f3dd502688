import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { request } from 'undici';
import { freePort } from '../../src/core/net.ts';
import HoldfastStorage from '../../src/verdaccio/index.ts';
import { AUDIENCE, DIDS, ISSUER, startTestHold, type TestHold } from '../support/hold-harness.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const PLUGIN = fileURLToPath(new URL('../../src/verdaccio/index.ts', import.meta.url));
const TSX_CJS = createRequire(import.meta.url).resolve('tsx/cjs');

describe('Verdaccio with the Holdfast storage plugin (real Verdaccio, real npm, hold + MinIO)', function () {
  this.timeout(300_000);
  let hold: TestHold;
  let work: string;
  let server: Server;
  let registryUrl: string;
  let npmrc: string;
  let storeConfig: Record<string, unknown>;
  const data = randomBytes(30 * MiB);
  const pkgName = 'holdfast-demo';

  const npm = (args: string[], cwd: string) =>
    run('npm', [...args, '--registry', registryUrl, '--userconfig', npmrc, '--cache', path.join(work, 'npm-cache'), '--no-audit', '--no-fund', '--loglevel', 'warn'], {
      cwd,
      maxBuffer: 64 * MiB,
      env: { ...process.env, npm_config_update_notifier: 'false' },
    });

  before(async function () {
    hold = await startTestHold('s3');
    work = await mkdtemp(path.join(os.tmpdir(), 'holdfast-verdaccio-'));
    await writeFile(path.join(work, 'driver.key'), hold.keys.privateKey, { mode: 0o600 });
    // Verdaccio loads `verdaccio-holdfast` from its plugins folder; this shim
    // loads the TypeScript plugin through tsx.
    const pluginDir = path.join(work, 'plugins', 'verdaccio-holdfast');
    await mkdir(pluginDir, { recursive: true });
    await writeFile(path.join(pluginDir, 'package.json'), JSON.stringify({ name: 'verdaccio-holdfast', main: 'index.cjs' }));
    await writeFile(path.join(pluginDir, 'index.cjs'), `require(${JSON.stringify(TSX_CJS)});\nmodule.exports = require(${JSON.stringify(PLUGIN)});\n`);
    storeConfig = {
      did: DIDS.owner,
      metadata: { kind: 'sqlite', path: './holdfast.db' },
      driver: { hold: { url: hold.url, audience: AUDIENCE }, issuer: ISSUER, privateKeyFile: './driver.key', provider: 'minio', partSize: 5 * MiB },
    };
    const port = await freePort();
    registryUrl = `http://127.0.0.1:${port}/`;
    const { runServer } = (await import('verdaccio')) as unknown as { runServer: (config: unknown) => Promise<Server> };
    server = await runServer({
      self_path: path.join(work, 'config.yaml'),
      storage: path.join(work, 'storage'),
      plugins: path.join(work, 'plugins'),
      store: { holdfast: storeConfig },
      auth: { htpasswd: { file: path.join(work, 'htpasswd'), max_users: 10 } },
      uplinks: {},
      packages: { '**': { access: '$all', publish: '$authenticated', unpublish: '$authenticated' } },
      max_body_size: '100mb',
      web: { enable: false },
      log: { type: 'stdout', format: 'json', level: 'error' },
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    const login = await request(`${registryUrl}-/user/org.couchdb.user:alice`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'alice', password: 'alice-password' }),
    });
    const { token } = (await login.body.json()) as { token: string };
    expect(token, 'a login token').to.be.a('string');
    npmrc = path.join(work, '.npmrc');
    await writeFile(npmrc, `//127.0.0.1:${port}/:_authToken=${token}\n`);
  });

  after(async function () {
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    server?.closeAllConnections?.();
    await hold?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function makePackage(version: string, payload: Buffer): Promise<string> {
    const dir = path.join(work, `pkg-${version}`);
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'package.json'), JSON.stringify({ name: pkgName, version, description: 'a Holdfast test package', files: ['data.bin'] }));
    await writeFile(path.join(dir, 'data.bin'), payload);
    return dir;
  }

  async function blobKeys(): Promise<string[]> {
    return (await hold.inspect.keys('docker/')).filter((key) => key.endsWith('/data'));
  }

  it('publishes a 30 MiB incompressible package and installs it byte-identically from a clean cache', async function () {
    await npm(['publish'], await makePackage('1.0.0', data));
    expect(await blobKeys()).to.have.length(1);
    const app = path.join(work, 'app');
    await mkdir(app);
    await writeFile(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '0.0.0', private: true }));
    await npm(['install', `${pkgName}@1.0.0`], app);
    const installed = await readFile(path.join(app, 'node_modules', pkgName, 'data.bin'));
    expect(createHash('sha256').update(installed).digest('hex')).to.equal(createHash('sha256').update(data).digest('hex'));
  });

  it('lists a second version, refuses to republish one, and removes the tarball on unpublish', async function () {
    await npm(['publish'], await makePackage('1.1.0', randomBytes(MiB)));
    const { stdout } = await npm(['view', pkgName, 'versions', '--json'], work);
    expect(JSON.parse(stdout)).to.deep.equal(['1.0.0', '1.1.0']);
    const again = await npm(['publish'], await makePackage('1.1.0', randomBytes(10))).catch((err: unknown) => err);
    expect(again).to.be.instanceOf(Error);
    expect((again as { stderr: string }).stderr).to.match(/cannot publish over|E403|E409|already exists/i);
    expect(await blobKeys()).to.have.length(2);
    await npm(['unpublish', `${pkgName}@1.1.0`, '--force'], work);
    expect(await blobKeys(), 'the 1.1.0 tarball is gone from the bucket').to.have.length(1);
    const after = await npm(['view', pkgName, 'versions', '--json'], work);
    expect([JSON.parse(after.stdout)].flat()).to.deep.equal(['1.0.0']);
  });

  it('leaves no multipart upload when a publishing client is killed', async function () {
    const dir = await makePackage('2.0.0', randomBytes(20 * MiB));
    const child = spawn('npm', ['publish', '--registry', registryUrl, '--userconfig', npmrc, '--cache', path.join(work, 'npm-cache')], { cwd: dir, stdio: 'ignore' });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    await new Promise((resolve) => setTimeout(resolve, 400));
    child.kill('SIGKILL');
    await exited;
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(await hold.inspect.pendingMultipartUploads()).to.equal(0);
  });

  it('abort() cancels the upload: no success, no multipart upload, no record', async function () {
    const plugin = new HoldfastStorage(storeConfig, { config: { self_path: path.join(work, 'config.yaml') }, logger: { info() {}, warn() {}, error() {} } });
    try {
      const storage = plugin.getPackageStorage('aborted-pkg');
      const stream = storage.writeTarball('aborted-pkg-1.0.0.tgz');
      const events: string[] = [];
      stream.on('open', () => events.push('open'));
      stream.on('success', () => events.push('success'));
      stream.on('error', () => events.push('error'));
      await new Promise((resolve) => stream.once('open', resolve));
      stream.write(randomBytes(12 * MiB));
      await new Promise((resolve) => setTimeout(resolve, 300));
      stream.abort();
      stream.end();
      await new Promise((resolve) => setTimeout(resolve, 500));
      expect(events).to.deep.equal(['open']);
      expect(await hold.inspect.pendingMultipartUploads()).to.equal(0);
      const read = storage.readTarball('aborted-pkg-1.0.0.tgz');
      const error = await new Promise<{ code?: string }>((resolve) => read.on('error', resolve));
      expect(error.code).to.equal('ENOENT');
    } finally {
      await plugin.close();
    }
  });
});
