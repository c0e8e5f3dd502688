import { expect } from 'chai';
import { request } from 'undici';
import { PostgresDb, SqliteDb, type Db } from '../../src/metadata/db.ts';
import { sha256 } from '../support/bytes.ts';
import { startTestRegistry, type TestRegistry } from '../support/registry-harness.ts';

const TAGS = 100_000;
const REPO = 'alice/many';
const MAX_PAGE = 1000;

/** Inserts `count` tags pointing at `digest` straight into the database: pushing 100,000 manifests would take minutes. */
async function insertTags(registry: TestRegistry, digest: string, count: number): Promise<void> {
  const config = registry.registry.config.metadata;
  const db: Db = config.kind === 'sqlite' ? new SqliteDb(config.path) : new PostgresDb({ connectionString: config.url, max: 1 });
  const now = new Date().toISOString();
  try {
    const sql =
      db.dialect === 'sqlite'
        ? `WITH RECURSIVE seq(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM seq WHERE x < ?) INSERT INTO tags (repository, tag, digest, updated_at) SELECT ?, printf('t%06d', x), ?, ? FROM seq`
        : `INSERT INTO tags (repository, tag, digest, updated_at) SELECT ?, 't' || lpad(x::text, 6, '0'), ?, ? FROM generate_series(1, ?::int) AS x`;
    await db.run(sql, db.dialect === 'sqlite' ? [count, REPO, digest, now] : [REPO, digest, now, count]);
    // The registry counts a repository's tags as it writes them; rows written behind its back are counted here.
    await db.run('UPDATE repositories SET tag_count = (SELECT COUNT(*) FROM tags WHERE repository = ?) WHERE name = ?', [REPO, REPO]);
  } finally {
    await db.close();
  }
}

for (const metadata of ['sqlite', 'postgres'] as const) {
  describe(`attack: tag lists and the catalog of a repository with 100,000 tags (${metadata})`, function () {
    this.timeout(180_000);
    let registry: TestRegistry;
    let token: string;

    async function get(path: string): Promise<{ status: number; link?: string; bytes: number; body: { tags?: string[]; repositories?: string[] } }> {
      const response = await request(`${registry.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
      const text = await response.body.text();
      return { status: response.statusCode, link: response.headers.link as string | undefined, bytes: Buffer.byteLength(text), body: JSON.parse(text) as { tags?: string[] } };
    }

    async function put(tag: string, manifest: Buffer): Promise<number> {
      const response = await request(`${registry.url}/v2/${REPO}/manifests/${tag}`, {
        method: 'PUT',
        body: manifest,
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      });
      await response.body.dump();
      return response.statusCode;
    }

    let manifest: Buffer;

    before(async function () {
      registry = await startTestRegistry({ backend: 'fs', metadata, limits: { maxTagsPerRepository: TAGS + 1 } });
      token = await registry.token('alice', `repository:${REPO}:pull,push registry:catalog:*`);
      const config = Buffer.from('{}');
      const upload = await request(`${registry.url}/v2/${REPO}/blobs/uploads/?digest=${sha256(config)}`, { method: 'POST', body: config, headers: { authorization: `Bearer ${token}` } });
      await upload.body.dump();
      expect(upload.statusCode).to.equal(201);
      manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
          layers: [],
        }),
      );
      expect(await put('latest', manifest)).to.equal(201);
      await insertTags(registry, sha256(manifest), TAGS);
    });
    after(async function () {
      await registry?.close();
    });

    it('pages every list; following Link returns each tag exactly once', async function () {
      const heapBefore = process.memoryUsage().heapUsed;
      const seen: string[] = [];
      let path: string | undefined = `/v2/${REPO}/tags/list`;
      let pages = 0;
      let largest = 0;
      while (path) {
        const page = await get(path);
        expect(page.status).to.equal(200);
        expect(page.body.tags?.length ?? 0).to.be.at.most(MAX_PAGE);
        largest = Math.max(largest, page.bytes);
        seen.push(...(page.body.tags ?? []));
        pages++;
        path = page.link ? /^<([^>]+)>; rel="next"$/.exec(page.link)?.[1] : undefined;
      }
      console.log(`      ${seen.length} tags in ${pages} pages, the largest ${largest} bytes; heap ${((process.memoryUsage().heapUsed - heapBefore) / 2 ** 20).toFixed(0)} MiB more`);
      expect(seen.length).to.equal(TAGS + 1);
      expect(new Set(seen).size).to.equal(TAGS + 1);
      expect([...seen].sort((a, b) => (Buffer.from(a) < Buffer.from(b) ? -1 : 1))).to.deep.equal(seen);
      expect(largest).to.be.below(64 * 1024);
    });

    it('caps ?n= at the maximum page size and keeps 8 concurrent lists bounded', async function () {
      const pages = await Promise.all(Array.from({ length: 8 }, () => get(`/v2/${REPO}/tags/list?n=999999999`)));
      for (const page of pages) {
        expect(page.status).to.equal(200);
        expect(page.body.tags?.length).to.equal(10_000);
        expect(page.link).to.match(/n=10000&last=t009999/);
      }
      const health = await request(`${registry.url}/healthz`);
      expect(health.statusCode).to.equal(200);
      await health.body.dump();
    });

    it('pages the catalog too', async function () {
      const first = await get('/v2/_catalog?n=1');
      expect(first.body.repositories).to.deep.equal([REPO]);
      expect(first.link, 'no next page when there is no more').to.equal(undefined);
      const all = await get('/v2/_catalog');
      expect(all.body.repositories).to.deep.equal([REPO]);
    });

    it('refuses a tag beyond maxTagsPerRepository and still moves an existing one', async function () {
      expect(await put('one-too-many', manifest)).to.equal(403);
      expect((await get(`/v2/${REPO}/tags/list?n=1&last=one-too-many`)).body.tags).to.deep.equal(['t000001']);
      expect(await put('t000001', manifest)).to.equal(201);
    });
  });
}
