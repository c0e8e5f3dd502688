/**
 * Web page render times on a grown registry: 10,000 repositories and one
 * repository with 100,000 tags (quick: 500 and 2,000), on SQLite and on
 * Postgres. One real image is pushed through the API (its config and
 * layer are real blobs in the hold); the rest of the rows are inserted in
 * bulk, each tag on its own manifest listing that config and layer, and one
 * index of two platforms. Each page is requested one at a time, as a browser
 * would, and timed from request to last byte; p50 and p95 are reported with
 * the page's weight (HTML, and the stylesheet and script it loads).
 *
 *   npm run bench:pages -- [--quick]
 *
 * Writes bench/results/pages.json standalone; `npm run bench` includes it.
 * Times are reported, never asserted.
 */
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
import { openDatabase, type Db } from '../src/metadata/db.ts';
import { OciTestClient } from '../test/support/oci-client.ts';
import { USERS, startTestRegistry, type TestRegistry } from '../test/support/registry-harness.ts';
import { webLogin } from '../test/support/web-login.ts';

export interface PageFigure {
  page: string;
  url: string;
  p50Ms: number;
  p95Ms: number;
  htmlBytes: number;
}

export interface PagesRun {
  metadata: 'sqlite' | 'postgres';
  repositories: number;
  tags: number;
  fillSeconds: number;
  pages: PageFigure[];
}

export interface PagesResult {
  requestsPerPage: number;
  /** Bytes of the stylesheet and the script every page loads once (then cached for good). */
  assetBytes: { css: number; js: number };
  runs: PagesRun[];
}

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const BIG = 'alice/big';
const BATCH = 500;

export async function runPages(options: { quick: boolean; log?: (line: string) => void }): Promise<PagesResult> {
  const log = options.log ?? (() => {});
  const repositories = options.quick ? 500 : 10_000;
  const tags = options.quick ? 2_000 : 100_000;
  const requests = options.quick ? 20 : 200;
  const runs: PagesRun[] = [];
  let assetBytes = { css: 0, js: 0 };
  for (const metadata of ['sqlite', 'postgres'] as const) {
    log(`pages: ${metadata}, ${repositories} repositories, ${tags} tags`);
    const registry = await startTestRegistry({ backend: 'fs', metadata });
    try {
      const started = performance.now();
      const image = await pushImage(registry);
      const db = await openDatabase(metadata === 'sqlite' ? { kind: 'sqlite', path: registry.databasePath as string } : { kind: 'postgres', url: registry.databaseUrl as string });
      let index: string;
      try {
        index = await fill(db, image, repositories, tags);
        // As autovacuum would by now on a registry that grew to this size.
        if (db.dialect === 'postgres') await db.run('ANALYZE');
      } finally {
        await db.close();
      }
      const fillSeconds = (performance.now() - started) / 1000;
      const cookie = await webLogin(registry.url, USERS.alice);
      const middleTag = `t${String(Math.floor(tags / 2)).padStart(6, '0')}`;
      const middlePushed = new Date(Date.parse('2026-01-01T00:00:00Z') + Math.floor(tags / 2) * 1000).toISOString();
      const middleRepository = `user${String(Math.floor(repositories / 400)).padStart(4, '0')}/app050`;
      const targets: [string, string, string?][] = [
        ['home, first page', '/ui/'],
        ['home, a middle page', `/ui/?after=${encodeURIComponent(middleRepository)}`],
        ['search by name', '/ui/?q=app042'],
        ['search by tag', '/ui/?q=t0010'],
        [`repository of ${tags} tags, by name`, `/ui/r/${BIG}`],
        ['… a middle page by name', `/ui/r/${BIG}?after=${middleTag}`],
        ['… newest first', `/ui/r/${BIG}?sort=pushed`],
        ['… a middle page newest first', `/ui/r/${BIG}?sort=pushed&after=${middleTag}&at=${encodeURIComponent(middlePushed)}`],
        ['image manifest', `/ui/r/${BIG}/-/manifests/${image.manifest}`],
        ['index manifest', `/ui/r/${BIG}/-/manifests/${index}`],
        ['storage (signed in)', '/ui/storage', cookie],
        ['login', '/ui/login'],
      ];
      const pages: PageFigure[] = [];
      for (const [page, url, withCookie] of targets) {
        const figure = await time(registry.url, url, withCookie, requests);
        pages.push({ page, url, ...figure });
        log(`pages: ${metadata} ${page}: p50 ${figure.p50Ms.toFixed(1)} ms, p95 ${figure.p95Ms.toFixed(1)} ms, ${figure.htmlBytes} B`);
      }
      assetBytes = await assets(registry.url);
      runs.push({ metadata, repositories, tags, fillSeconds, pages });
    } finally {
      await registry.close();
    }
  }
  return { requestsPerPage: requests, assetBytes, runs };
}

async function pushImage(registry: TestRegistry): Promise<{ manifest: string; config: { digest: string; size: number }; layer: { digest: string; size: number } }> {
  const client = new OciTestClient(USERS.alice);
  const blob = async (bytes: Buffer) => ({ digest: await client.pushBlob(registry.url, BIG, bytes), size: bytes.length });
  const config = await blob(Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Cmd: ['/app'], Labels: { team: 'bench' } }, rootfs: { type: 'layers', diff_ids: [] }, history: [{ created_by: 'COPY app /app' }] })));
  const layer = await blob(Buffer.alloc(100_000, 7));
  const body = Buffer.from(JSON.stringify(manifestOf(config, layer, -1)));
  const put = await client.call(registry.url, BIG, 'PUT', `/v2/${BIG}/manifests/latest`, { body, headers: { 'content-type': OCI_MANIFEST } });
  if (put.status !== 201) throw new Error(`manifest PUT: ${put.status} ${put.text}`);
  return { manifest: `sha256:${createHash('sha256').update(body).digest('hex')}`, config, layer };
}

function manifestOf(config: { digest: string; size: number }, layer: { digest: string; size: number }, n: number): object {
  return {
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...layer }],
    annotations: { n: String(n) },
  };
}

/** The rows a registry that grew would hold; returns the index's digest. */
async function fill(db: Db, image: Awaited<ReturnType<typeof pushImage>>, repositories: number, tags: number): Promise<string> {
  const base = Date.parse('2026-01-01T00:00:00Z');
  const at = (i: number) => new Date(base + i * 1000).toISOString();
  const digest = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const insert = async (tx: Db, rows: { repository: string; tag: string; content: Buffer; mediaType: string; when: string }[], children: (row: { content: Buffer }) => [string, string][]) => {
    await tx.run(
      `INSERT INTO manifests (repository, digest, media_type, content, size, created_at) VALUES ${rows.map(() => '(?, ?, ?, ?, ?, ?)').join(', ')} ON CONFLICT DO NOTHING`,
      rows.flatMap((row) => [row.repository, digest(row.content), row.mediaType, row.content, row.content.length, row.when]),
    );
    const references = rows.flatMap((row) => children(row).map(([child, kind]) => [row.repository, digest(row.content), child, kind]));
    if (references.length > 0) {
      await tx.run(`INSERT INTO manifest_references (repository, digest, child, kind) VALUES ${references.map(() => '(?, ?, ?, ?)').join(', ')} ON CONFLICT DO NOTHING`, references.flat());
    }
    await tx.run(
      `INSERT INTO tags (repository, tag, digest, updated_at) VALUES ${rows.map(() => '(?, ?, ?, ?)').join(', ')} ON CONFLICT DO NOTHING`,
      rows.flatMap((row) => [row.repository, row.tag, digest(row.content), row.when]),
    );
  };
  const blobChildren = (): [string, string][] => [
    [image.config.digest, 'blob'],
    [image.layer.digest, 'blob'],
  ];

  for (let start = 0; start < tags; start += BATCH) {
    const rows = Array.from({ length: Math.min(BATCH, tags - start) }, (_, k) => start + k).map((i) => ({
      repository: BIG,
      tag: `t${String(i).padStart(6, '0')}`,
      content: Buffer.from(JSON.stringify(manifestOf(image.config, image.layer, i))),
      mediaType: OCI_MANIFEST,
      when: at(i),
    }));
    await db.transaction((tx) => insert(tx, rows, blobChildren));
  }
  const platform = (n: number) => Buffer.from(JSON.stringify(manifestOf(image.config, image.layer, n)));
  const indexBody = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, digest: digest(platform(0)), size: platform(0).length, platform: { os: 'linux', architecture: 'amd64' } },
        { mediaType: OCI_MANIFEST, digest: digest(platform(1)), size: platform(1).length, platform: { os: 'linux', architecture: 'arm64' } },
      ],
    }),
  );
  await db.transaction((tx) =>
    insert(tx, [{ repository: BIG, tag: 'multi', content: indexBody, mediaType: OCI_INDEX, when: at(tags) }], () => [
      [digest(platform(0)), 'manifest'],
      [digest(platform(1)), 'manifest'],
    ]),
  );

  // Repositories of 200 users, each with one tag on its own manifest and a link to the image's blobs.
  for (let start = 0; start < repositories; start += BATCH) {
    const names = Array.from({ length: Math.min(BATCH, repositories - start) }, (_, k) => start + k).map(
      (i) => `user${String(Math.floor(i / 200)).padStart(4, '0')}/app${String(i % 200).padStart(3, '0')}`,
    );
    await db.transaction(async (tx) => {
      await tx.run(`INSERT INTO repositories (name, created_at) VALUES ${names.map(() => '(?, ?)').join(', ')} ON CONFLICT DO NOTHING`, names.flatMap((name) => [name, at(0)]));
      await tx.run(
        `INSERT INTO repository_blobs (repository, digest, created_at) VALUES ${names.map(() => '(?, ?, ?), (?, ?, ?)').join(', ')} ON CONFLICT DO NOTHING`,
        names.flatMap((name) => [name, image.config.digest, at(0), name, image.layer.digest, at(0)]),
      );
      await insert(
        tx,
        names.map((name, k) => ({ repository: name, tag: 'v1', content: Buffer.from(JSON.stringify(manifestOf(image.config, image.layer, start + k))), mediaType: OCI_MANIFEST, when: at(start + k) })),
        blobChildren,
      );
    });
  }
  return digest(indexBody);
}

async function time(base: string, url: string, cookie: string | undefined, requests: number): Promise<{ p50Ms: number; p95Ms: number; htmlBytes: number }> {
  const samples: number[] = [];
  let htmlBytes = 0;
  for (let i = 0; i < requests + 5; i++) {
    const started = performance.now();
    const response = await request(`${base}${url}`, { headers: cookie ? { cookie } : {} });
    const body = await response.body.arrayBuffer();
    const elapsed = performance.now() - started;
    if (response.statusCode !== 200) throw new Error(`${url}: ${response.statusCode} ${Buffer.from(body).toString().slice(0, 300)}`);
    htmlBytes = body.byteLength;
    // The first few warm the caches and the JIT, as a running registry's would be.
    if (i >= 5) samples.push(elapsed);
  }
  samples.sort((a, b) => a - b);
  const at = (q: number) => samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] as number;
  return { p50Ms: at(0.5), p95Ms: at(0.95), htmlBytes };
}

async function assets(base: string): Promise<{ css: number; js: number }> {
  const home = await (await request(`${base}/ui/`)).body.text();
  const size = async (pattern: RegExp) => {
    const url = pattern.exec(home)?.[1];
    if (!url) return 0;
    return (await (await request(`${base}${url}`)).body.arrayBuffer()).byteLength;
  };
  return { css: await size(/href="(\/ui\/static\/[^"]+\.css)"/), js: await size(/src="(\/ui\/static\/[^"]+\.js)"/) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const { mochaGlobalTeardown } = await import('../test/support/global-fixtures.ts');
  try {
    const result = await runPages({ quick: process.argv.includes('--quick'), log: (line) => console.error(`[bench] ${line}`) });
    const out = path.join(path.dirname(fileURLToPath(import.meta.url)), 'results', 'pages.json');
    await mkdir(path.dirname(out), { recursive: true });
    await writeFile(out, `${JSON.stringify(result, null, 2)}\n`);
    console.log(JSON.stringify(result, null, 2));
  } finally {
    await mochaGlobalTeardown();
  }
}
