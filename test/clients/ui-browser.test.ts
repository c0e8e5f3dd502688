import { expect } from 'chai';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { request } from 'undici';
import { chromiumBinary, craneBinary, orasBinary, runTool } from '../support/clients.ts';
import { DIDS } from '../support/hold-harness.ts';
import { buildImage } from '../support/oci-layout.ts';
import { VISIBILITY_LIMITS } from '../../src/registry/auth/access.ts';
import { USERS, startTestRegistry, type TestRegistry } from '../support/registry-harness.ts';

const AXE_SOURCE = readFile(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');
/** Set to write the README's screenshots into docs/screenshots/. */
const SCREENSHOTS = process.env.HOLDFAST_SCREENSHOTS === '1' ? path.resolve('docs/screenshots') : undefined;
/** Labels whose markup would run if a page ever drew it as HTML. */
const HOSTILE_LABELS = {
  'org.example.script': '<script>window.__pwned = "script"</script>',
  'org.example.image': '<img src=x onerror="window.__pwned = \'img\'">',
  'org.opencontainers.image.url': 'javascript:window.__pwned = "link"',
  'org.opencontainers.image.description': 'A web server, pushed by crane for the browser test',
};

/**
 * The web pages in Debian's Chromium, driven by playwright-core: real images
 * pushed with crane (two platforms and an index) and oras (an SBOM and a
 * signature as referrers); then every page walked and clicked, login, a tag
 * deleted, each checked against the registry's API, with axe-core on every
 * page and no Content-Security-Policy violation anywhere.
 */
describe('web pages in a real browser (Chromium, playwright-core)', function () {
  this.timeout(600_000);
  let registry: TestRegistry;
  let work: string;
  let host: string;
  let env: NodeJS.ProcessEnv;
  let browser: Browser;
  let context: BrowserContext;
  let indexDigest: string;
  const violations: string[] = [];

  before(async function () {
    registry = await startTestRegistry({ backend: 'fs', gc: { did: DIDS.owner, intervalSeconds: 0, graceSeconds: 3600 } });
    host = new URL(registry.url).host;
    work = await mkdtemp(path.join(os.tmpdir(), 'holdfast-ui-browser-'));
    const authDir = path.join(work, 'auth');
    await mkdir(authDir);
    await writeFile(path.join(authDir, 'config.json'), JSON.stringify({ auths: { [host]: { auth: Buffer.from(`${USERS.alice.username}:${USERS.alice.password}`).toString('base64') } } }), { mode: 0o600 });
    env = { ...process.env, DOCKER_CONFIG: authDir };

    const crane = await craneBinary();
    const amd = await buildImage(path.join(work, 'amd64'), [300_000, 2048], 'latest', {
      architecture: 'amd64',
      created: '2026-12-01T10:00:00Z',
      config: { Entrypoint: ['/usr/bin/web'], Cmd: ['--port', '8080'], Env: ['PATH=/usr/bin'], Labels: HOSTILE_LABELS, ExposedPorts: { '8080/tcp': {} } },
      history: [{ created: '2026-12-01T10:00:00Z', created_by: 'COPY web /usr/bin/web' }],
    });
    const arm = await buildImage(path.join(work, 'arm64'), [280_000], 'latest', { architecture: 'arm64', variant: 'v8', config: { Labels: HOSTILE_LABELS } });
    await runTool(crane, ['push', '--insecure', amd.dir, `${host}/alice/web:amd64`], env);
    await runTool(crane, ['push', '--insecure', arm.dir, `${host}/alice/web:arm64`], env);
    await runTool(crane, ['index', 'append', '--insecure', '-m', `${host}/alice/web:amd64`, '-m', `${host}/alice/web:arm64`, '-t', `${host}/alice/web:v1`], env);
    indexDigest = (await runTool(crane, ['digest', '--insecure', `${host}/alice/web:v1`], env)).trim();

    const oras = await orasBinary();
    const config = path.join(authDir, 'config.json');
    await writeFile(path.join(work, 'sbom.spdx.json'), JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'web' }));
    await writeFile(path.join(work, 'signature.json'), JSON.stringify({ critical: { image: { 'docker-manifest-digest': indexDigest } } }));
    for (const [artifactType, file] of [
      ['application/spdx+json', 'sbom.spdx.json'],
      ['application/vnd.dev.cosign.simplesigning.v1+json', 'signature.json'],
    ] as const) {
      await runTool(oras, ['attach', '--plain-http', '--registry-config', config, '--artifact-type', artifactType, `${host}/alice/web:v1`, `${file}:${artifactType}`], { ...env, HOME: work }, work);
    }

    browser = await chromium.launch({
      executablePath: await chromiumBinary(),
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  });
  after(async function () {
    await browser?.close();
    await registry?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  async function open(url: string): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (message) => {
      if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
    });
    const response = await page.goto(`${registry.url}${url}`);
    expect(response?.status(), url).to.be.below(400);
    return page;
  }

  /** axe-core's serious and critical findings on the page, as text. */
  async function accessibility(page: Page): Promise<string[]> {
    await page.evaluate(await AXE_SOURCE);
    const found = await page.evaluate(async () => {
      const axe = (globalThis as unknown as { axe: { run: () => Promise<{ violations: { id: string; impact: string; help: string }[]; passes: unknown[] }> } }).axe;
      const results = await axe.run();
      return { violations: results.violations, passes: results.passes.length };
    });
    expect(found.passes, 'axe-core checked nothing').to.be.greaterThan(10);
    return found.violations.filter((violation) => violation.impact === 'serious' || violation.impact === 'critical').map((violation) => `${violation.id} (${violation.impact}): ${violation.help}`);
  }

  async function check(page: Page, screenshot?: string): Promise<void> {
    expect(await accessibility(page), page.url()).to.deep.equal([]);
    expect(await page.evaluate(() => (globalThis as { __pwned?: string }).__pwned), 'a pushed label ran as script').to.equal(undefined);
    if (SCREENSHOTS && screenshot) await page.screenshot({ path: path.join(SCREENSHOTS, `${screenshot}.png`), fullPage: true });
  }

  async function api(pathname: string, accept?: string): Promise<{ status: number; body: string }> {
    const token = await registry.token('alice', 'repository:alice/web:pull');
    const response = await request(`${registry.url}${pathname}`, { headers: { authorization: `Bearer ${token}`, ...(accept ? { accept } : {}) } });
    return { status: response.statusCode, body: await response.body.text() };
  }

  it('walks home → repository → index → platform → referrer, showing what the API holds', async function () {
    if (SCREENSHOTS) await mkdir(SCREENSHOTS, { recursive: true });
    const home = await open('/ui/');
    await check(home, 'home');
    await home.getByRole('link', { name: 'alice/web' }).click();
    await home.waitForURL(/\/ui\/r\/alice\/web$/);
    await check(home, 'repository');
    const row = home.locator('#tags tbody tr').filter({ has: home.getByRole('link', { name: 'v1', exact: true }) });
    expect(await row.textContent()).to.contain('linux/amd64').and.contain('linux/arm64/v8');
    const tags = JSON.parse((await api('/v2/alice/web/tags/list')).body) as { tags: string[] };
    expect(await home.locator('#tags tbody tr').count()).to.equal(tags.tags.length);

    // Scripts help but are not needed: the copy buttons and the filter appear only when they run.
    expect(await home.locator('button[data-copy]').first().isVisible()).to.equal(true);
    await home.locator('#filter').fill('v1');
    expect(await home.locator('#tags tbody tr:visible').count()).to.equal(1);
    await home.locator('#filter').fill('');

    await row.getByRole('link', { name: 'v1' }).click();
    await home.waitForURL(/\/manifests\//);
    await check(home, 'index');
    expect(decodeURIComponent(home.url())).to.contain(indexDigest);
    const index = JSON.parse((await api(`/v2/alice/web/manifests/${indexDigest}`, 'application/vnd.oci.image.index.v1+json')).body) as { manifests: { digest: string }[] };
    for (const entry of index.manifests) expect(await home.locator(`a[href$="${encodeURIComponent(entry.digest)}"]`).count(), entry.digest).to.be.greaterThan(0);
    const referrers = JSON.parse((await api(`/v2/alice/web/referrers/${indexDigest}`)).body) as { manifests: { digest: string; artifactType: string }[] };
    expect(referrers.manifests).to.have.length(2);
    const referrerRows = home.locator('h2:has-text("Referrers") + table tbody tr');
    expect(await referrerRows.count()).to.equal(2);
    expect(await referrerRows.allTextContents()).to.satisfy((rows: string[]) => rows.some((text) => text.includes('application/spdx+json')) && rows.some((text) => text.includes('cosign')));

    await home.getByRole('link', { name: 'linux/amd64' }).first().click();
    await home.waitForURL(/\/manifests\//);
    await check(home, 'image');
    const text = await home.locator('main').textContent();
    expect(text).to.contain('/usr/bin/web').and.contain('COPY web /usr/bin/web').and.contain('<script>window.__pwned').and.contain('8080/tcp');
    expect(await home.locator('a[href^="javascript:"]').count()).to.equal(0);

    await home.goto(`${registry.url}/ui/r/alice/web/-/manifests/${referrers.manifests[0]?.digest}`);
    await check(home);
    await home.getByRole('link', { name: indexDigest }).click();
    await home.waitForURL((url) => decodeURIComponent(url.pathname).endsWith(indexDigest));
  });

  it('logs in, shows storage, deletes a tag after confirming, creates and revokes a token, grants and revokes access, and logs out', async function () {
    const page = await open('/ui/storage');
    await page.waitForURL(/\/ui\/login/);
    await check(page, 'login');
    await page.getByLabel('User name').fill(USERS.alice.username);
    await page.getByLabel('Password').fill('wrong');
    await page.getByRole('button', { name: 'Log in' }).click();
    expect(await page.getByRole('alert').textContent()).to.contain('Wrong user name or password');
    await page.getByLabel('User name').fill(USERS.alice.username);
    await page.getByLabel('Password').fill(USERS.alice.password);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(/\/ui\/storage$/);
    await registry.registry.gc?.run();
    await page.reload();
    await check(page, 'storage');
    expect(await page.locator('main').textContent()).to.contain('alice/web').and.contain('add up to more than the total').and.contain('Last pass');
    const cookies = await context.cookies();
    const session = cookies.find((cookie) => cookie.name === 'hf_session');
    expect(session?.httpOnly).to.equal(true);
    expect(session?.sameSite).to.equal('Strict');

    await page.goto(`${registry.url}/ui/r/alice/web`);
    await page.getByRole('link', { name: 'Delete tag arm64' }).click();
    await check(page, 'delete');
    expect(await page.locator('main').textContent()).to.contain('Garbage collection deletes');
    await page.getByRole('button', { name: 'Delete' }).click();
    await page.waitForURL(/\/ui\/r\/alice\/web$/);
    expect(await page.getByRole('link', { name: 'arm64', exact: true }).count()).to.equal(0);
    expect((await api('/v2/alice/web/manifests/arm64', 'application/vnd.oci.image.manifest.v1+json')).status).to.equal(404);
    expect((await api('/v2/alice/web/manifests/v1', 'application/vnd.oci.image.index.v1+json')).status).to.equal(200);

    await page.getByRole('link', { name: 'Tokens' }).click();
    await page.waitForURL(/\/ui\/tokens$/);
    await page.getByLabel('Name', { exact: true }).fill('browser ci');
    await page.getByLabel('Repositories').fill('alice/web');
    await page.getByRole('checkbox', { name: 'push' }).check();
    await page.getByRole('button', { name: 'Create token' }).click();
    await check(page, 'tokens');
    const secret = /hfat_[0-9A-Za-z]{50}/.exec((await page.locator('main').textContent()) ?? '')?.[0];
    expect(secret, 'the new token is shown').to.be.a('string');
    const pull = await fetch(`${registry.url}/v2/alice/web/tags/list`, { headers: { authorization: `Basic ${Buffer.from(`alice:${secret as string}`).toString('base64')}` } });
    expect(pull.status, 'the token works').to.equal(200);
    await page.getByRole('button', { name: 'Revoke browser ci' }).click();
    await page.waitForURL(/\/ui\/tokens$/);
    expect(await page.locator('main').textContent()).to.contain('revoked').and.not.contain(secret as string);

    await page.goto(`${registry.url}/ui/r/alice/web`);
    await page.getByRole('link', { name: 'Access' }).click();
    await page.waitForURL(/\/ui\/access\?name=alice%2Fweb$/);
    await page.getByLabel('User or robot').fill('bob');
    await page.getByRole('button', { name: 'Grant' }).click();
    await check(page, 'access');
    expect(await page.locator('main').textContent()).to.contain('bob').and.contain('public');
    await page.getByRole('button', { name: 'Revoke bob' }).click();
    await page.waitForURL(/\/ui\/access\?name=alice%2Fweb$/);
    expect(await page.locator('main table').count()).to.equal(0);

    await page.getByRole('button', { name: 'Log out' }).click();
    await page.waitForURL(/\/ui\/$/);
    expect(await page.getByRole('link', { name: 'Log in' }).count()).to.equal(1);
  });

  it('leaves a private repository out of the home page, its name search and its tag search for anyone who may not pull it; its owner sees it there, its labels inert', async function () {
    const image = await buildImage(path.join(work, 'secret'), [4096], 'latest', { architecture: 'amd64', config: { Labels: HOSTILE_LABELS } });
    await runTool(await craneBinary(), ['push', '--insecure', image.dir, `${host}/alice/secret:latest`], env);
    await runTool(await craneBinary(), ['tag', '--insecure', `${host}/alice/web:v1`, 'latest'], env);
    await registry.registry.accounts.setVisibility('repository', 'alice/secret', true, VISIBILITY_LIMITS);
    // The rules snapshot refreshes within a second.
    for (let tries = 0; (await request(`${registry.url}/v2/alice/secret/tags/list`).then((response) => response.body.dump().then(() => response.statusCode))) !== 404; tries++) {
      if (tries > 40) throw new Error('alice/secret never became private');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const anonymous = await open('/ui/');
    await check(anonymous);
    expect(await anonymous.getByRole('link', { name: 'alice/web' }).count()).to.equal(1);
    expect(await anonymous.locator('main').textContent()).to.not.contain('alice/secret');
    for (const q of ['secret', 'alice']) {
      await anonymous.goto(`${registry.url}/ui/?q=${q}`);
      await check(anonymous);
      expect(await anonymous.locator('main').textContent(), q).to.not.contain('alice/secret');
    }
    await anonymous.goto(`${registry.url}/ui/?q=latest`);
    await check(anonymous);
    const hits = anonymous.locator('h2:has-text("Tags starting with") + table tbody tr');
    expect(await hits.allTextContents()).to.satisfy((rows: string[]) => rows.length === 1 && rows[0]?.includes('alice/web'));

    const owner = await browser.newContext();
    try {
      const page = await owner.newPage();
      await page.goto(`${registry.url}/ui/login?next=%2Fui%2F%3Fq%3Dlatest`);
      await page.getByLabel('User name').fill(USERS.alice.username);
      await page.getByLabel('Password').fill(USERS.alice.password);
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.waitForURL(/\/ui\/\?q=latest$/);
      await check(page);
      const ownHits = page.locator('h2:has-text("Tags starting with") + table tbody tr');
      expect((await ownHits.allTextContents()).map((row) => (row.includes('alice/secret') ? 'alice/secret' : row.includes('alice/web') ? 'alice/web' : row))).to.have.members(['alice/secret', 'alice/web']);
      await page.goto(`${registry.url}/ui/?q=secret`);
      await page.getByRole('link', { name: 'alice/secret' }).first().click();
      await page.waitForURL(/\/ui\/r\/alice\/secret$/);
      await page.getByRole('link', { name: 'latest', exact: true }).click();
      await page.waitForURL(/\/manifests\//);
      await check(page);
      expect(await page.locator('main').textContent()).to.contain('<script>window.__pwned');
      expect(await page.locator('a[href^="javascript:"]').count()).to.equal(0);
    } finally {
      await owner.close();
    }
  });

  it('works without JavaScript: no copy buttons or instant filter, and the server-side filter and links still work', async function () {
    const plain = await browser.newContext({ javaScriptEnabled: false });
    try {
      const page = await plain.newPage();
      await page.goto(`${registry.url}/ui/r/alice/web`);
      expect(await page.locator('button[data-copy]').first().isVisible()).to.equal(false);
      expect(await page.locator('#filter').isVisible()).to.equal(false);
      expect(await page.locator('main').textContent()).to.contain(`docker pull ${host}/alice/web:`);
      await page.getByLabel('Tags starting with').fill('v');
      await page.getByRole('button', { name: 'Filter' }).click();
      await page.waitForURL(/q=v/);
      expect(await page.locator('#tags tbody tr').count()).to.equal(1);
      await page.getByRole('link', { name: 'v1', exact: true }).click();
      await page.waitForURL(/\/manifests\//);
      expect(await page.locator('h2:has-text("Platforms") + table tbody tr').count()).to.equal(2);
    } finally {
      await plain.close();
    }
  });

  it('no page broke its Content-Security-Policy', function () {
    expect(violations).to.deep.equal([]);
  });
});
