import { expect } from 'chai';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { GrantRow, VisibilityRow } from '../../src/metadata/accounts/store.ts';
import { openDatabase, type Db, type Row, type SqlValue } from '../../src/metadata/db.ts';
import { BrowseStore, TAG_SEARCH_MAX_ROWS } from '../../src/metadata/oci/browse.ts';
import { walkRepositories } from '../../src/metadata/oci/catalog-walk.ts';
import { SqlMetadataStore } from '../../src/metadata/oci/store.ts';
import { RepositoryAccess } from '../../src/registry/auth/access.ts';
import { catalogFilter, type CatalogViewer } from '../../src/registry/auth/catalog-filter.ts';
import type { User } from '../../src/registry/auth/users.ts';
import { sharedPostgres } from '../support/global-fixtures.ts';
import { generator, propertySeed } from '../support/random.ts';

/** Namespaces whose names sort around one another's `ns/` and `ns0`: `a-b` and `a.c` fall between `a` and `a/`. */
const NAMESPACES = ['a', 'a-b', 'a.c', 'a0', 'ab', 'alice', 'bob', 'b', 'pub', 'z'];
const SUFFIXES = ['', '/x', '/x/y', '/y-z', '/0', '/a', '/zz'];
const USERS: Record<string, User | undefined> = {
  anonymous: undefined,
  alice: { username: 'alice', did: 'did:plc:alice', handle: 'alice' },
  bob: { username: 'bob', did: 'did:plc:bob', handle: 'bob' },
  robot: { username: 'alice+ci', did: 'did:plc:alice' },
};

async function insertRepositories(db: Db, names: readonly string[]): Promise<void> {
  const now = new Date().toISOString();
  for (let i = 0; i < names.length; i += 500) {
    const chunk = names.slice(i, i + 500);
    await db.run(`INSERT INTO repositories (name, created_at) VALUES ${chunk.map(() => '(?, ?)').join(', ')}`, chunk.flatMap((name) => [name, now]));
  }
}

function viewerOf(access: RepositoryAccess, user: User | undefined): CatalogViewer {
  return { ...(user?.handle !== undefined ? { handle: user.handle } : {}), ...(user ? access.grantsOf(user.username) : { repositories: [], namespaces: [] }) };
}

/** Every page of the catalog as a client reads it: `n` at a time, each after the last name shown. */
async function readAll(list: (after: string | undefined, n: number) => Promise<string[]>, n: number): Promise<string[]> {
  const all: string[] = [];
  for (let pages = 0; pages < 1000; pages++) {
    const page = await list(all.at(-1), n);
    all.push(...page);
    if (page.length < n) return all;
  }
  throw new Error('the walk did not end');
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`catalog walk under private repositories (${kind})`, function () {
    let db: Db;
    let dir: string | undefined;

    beforeEach(async function () {
      if (kind === 'sqlite') {
        dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-catalog-'));
        db = await openDatabase({ kind, path: path.join(dir, 'registry.db') });
      } else {
        db = await openDatabase({ kind, url: await (await sharedPostgres()).createDatabase() });
      }
    });
    afterEach(async function () {
      await db?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('property: every page, of any size, shows exactly what the pull rules let the viewer pull, in order, with a name search too', async function () {
      const seed = propertySeed();
      const random = generator(seed);
      const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)] as T;
      const universe = NAMESPACES.flatMap((namespace) => SUFFIXES.map((suffix) => `${namespace}${suffix}`));
      const store = new SqlMetadataStore(db);
      const browse = new BrowseStore(db);
      const rounds = 40;
      let present: string[] = [];
      for (let round = 0; round < rounds; round++) {
        // Each round adds repositories and draws new rules, some for names that do not exist.
        const added = universe.filter((name) => !present.includes(name) && random() < 0.2);
        await insertRepositories(db, added);
        present = [...present, ...added].sort();
        const visibility: VisibilityRow[] = [];
        for (const name of universe) if (random() < 0.15) visibility.push({ kind: name.includes('/') ? 'repository' : 'namespace', name, private: random() < 0.6 });
        for (const namespace of NAMESPACES) if (random() < 0.2) visibility.push({ kind: 'namespace', name: namespace, private: random() < 0.6 });
        const unique = [...new Map(visibility.map((row) => [`${row.kind}:${row.name}`, row])).values()];
        const grants: GrantRow[] = [];
        for (const grantee of ['bob', 'alice+ci']) {
          for (let i = 0; i < 3; i++) {
            const name = random() < 0.5 ? pick(NAMESPACES) : pick(universe);
            grants.push({ kind: name.includes('/') ? 'repository' : 'namespace', name, grantee, access: 'pull', createdAt: '' });
          }
        }
        const access = new RepositoryAccess(random() < 0.5, unique, grants);
        for (const [label, user] of Object.entries(USERS)) {
          const filter = catalogFilter(access, viewerOf(access, user));
          const expected = present.filter((name) => access.rights(user, name, true).includes('pull'));
          const n = pick([1, 2, 3, 7, 100]);
          const context = `seed ${seed}, round ${round}, ${label}, n=${n}, default ${access.defaultPrivate ? 'private' : 'public'}`;
          expect(await readAll((after, size) => store.listRepositories({ n: size, ...(after !== undefined ? { last: after } : {}) }, filter), n), context).to.deep.equal(expected);
          // A client's own `last`, which need not be a name (nor ASCII): what follows it bytewise.
          const last = pick(['a', 'a-', 'a/', 'a0', 'alice/x', 'b/', 'a\u00e9', '\uffff', 'z/zz', '~']);
          const after = expected.filter((name) => Buffer.compare(Buffer.from(name), Buffer.from(last)) > 0);
          expect(await store.listRepositories({ n: 1000, last }, filter), `${context}, last=${last}`).to.deep.equal(after);
          const query = pick(['a', '-', '/x', 'zz']);
          expect(
            await readAll((after, size) => browse.repositories({ query, limit: size, filter, ...(after !== undefined ? { after } : {}) }), n),
            `${context}, q=${query}`,
          ).to.deep.equal(expected.filter((name) => name.includes(query)));
        }
      }
    });
  });
}

describe('catalog walk cost (sqlite)', function () {
  let opened: Db;
  let db: Db;
  let dir: string;
  let queries: number;
  let rows: number;
  const nobody = { repositories: [], namespaces: [] };
  const numbered = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(6, '0')}`);

  beforeEach(async function () {
    dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-catalog-cost-'));
    opened = await openDatabase({ kind: 'sqlite', path: path.join(dir, 'registry.db') });
    // Counts what the walk reads; the fill goes to `opened` directly.
    db = {
      dialect: opened.dialect,
      run: (sql, params) => opened.run(sql, params),
      get: (sql, params) => opened.get(sql, params),
      transaction: (work) => opened.transaction(work),
      all: async <T extends Row>(sql: string, params?: readonly SqlValue[]) => {
        const result = await opened.all<T>(sql, params);
        queries++;
        rows += result.length;
        return result;
      },
      close: () => opened.close(),
    };
    queries = 0;
    rows = 0;
  });
  afterEach(async function () {
    await opened.close();
    await rm(dir, { recursive: true, force: true });
  });

  /** 200 namespaces of 100 repositories each. */
  const fillNamespaces = () => insertRepositories(opened, Array.from({ length: 20_000 }, (_, i) => `ns${String(Math.floor(i / 100)).padStart(3, '0')}/r${String(i % 100).padStart(3, '0')}`));

  it('under auth.defaultVisibility private, a viewer who sees 2 of 20,000 repositories reads a handful of rows, not every one', async function () {
    await fillNamespaces();
    const access = new RepositoryAccess(true, [{ kind: 'repository', name: 'ns100/r050', private: false }], [{ kind: 'repository', name: 'ns150/r007', grantee: 'bob', access: 'pull', createdAt: '' }]);
    const seen = await walkRepositories(db, catalogFilter(access, { handle: 'bob', ...access.grantsOf('bob') }), { limit: 100 });
    expect(seen).to.deep.equal(['ns100/r050', 'ns150/r007']);
    expect(queries).to.be.at.most(4);
    expect(rows).to.be.at.most(4 * 32);
    // An anonymous caller who sees nothing costs one query.
    queries = rows = 0;
    expect(await walkRepositories(db, catalogFilter(new RepositoryAccess(true), nobody), { limit: 100 })).to.deep.equal([]);
    expect(queries).to.equal(1);
  });

  it('with private namespaces in a public registry, each private namespace costs one jump, not its rows', async function () {
    await fillNamespaces();
    // Every other namespace private: 100 namespaces of 100 rows hidden, 10,000 shown.
    const access = new RepositoryAccess(false, Array.from({ length: 100 }, (_, i) => ({ kind: 'namespace' as const, name: `ns${String(i * 2).padStart(3, '0')}`, private: true })));
    const filter = catalogFilter(access, nobody);
    const all = await readAll((after, n) => walkRepositories(db, filter, { limit: n, ...(after !== undefined ? { after } : {}) }), 1000);
    expect(all).to.have.length(10_000);
    expect(all.every((name) => Number(name.slice(2, 5)) % 2 === 1)).to.equal(true);
    // Read: the 10,000 shown, and a short batch into each private namespace before its jump.
    expect(rows).to.be.at.most(10_000 + 100 * 128);
    expect(queries).to.be.at.most(100 * 4 + 11);
  });

  it('attack: ?n=1 over 4,000 repositories made private one by one reads in growing batches, not a query per two rows', async function () {
    const hidden = numbered('eve/r', 4000);
    await insertRepositories(opened, [...hidden, 'zzz/app']);
    const access = new RepositoryAccess(false, hidden.map((name) => ({ kind: 'repository' as const, name, private: true })));
    // The catalog asks for n + 1.
    expect(await new SqlMetadataStore(db).listRepositories({ n: 2, last: 'eve' }, catalogFilter(access, nobody))).to.deep.equal(['zzz/app']);
    expect(queries).to.be.at.most(10);
  });

  it('attack: an owner interleaving public rows on names that do not exist with private repositories makes a jump per row; the walk takes them inside its batch', async function () {
    const repositories = numbered('eve/r', 4000);
    await insertRepositories(opened, repositories);
    // `eve/r000001-p` public, and so on: each private repository's next possible name is one row on.
    const access = new RepositoryAccess(true, repositories.filter((_, i) => i % 2 === 1).map((name) => ({ kind: 'repository' as const, name: `${name}-p`, private: false })));
    expect(await new SqlMetadataStore(db).listRepositories({ n: 101 }, catalogFilter(access, nobody))).to.deep.equal([]);
    expect(rows).to.be.at.most(2 * 4000);
    expect(queries).to.be.at.most(4000 / 16);
  });

  it(`attack: an anonymous tag search over 20,000 private repositories that all have \`latest\` reads at most ${TAG_SEARCH_MAX_ROWS} tags, each once`, async function () {
    const repositories = numbered('corp/r', 20_000);
    await insertRepositories(opened, [...repositories, 'pub/app']);
    const now = new Date().toISOString();
    for (let i = 0; i < repositories.length; i += 500) {
      const chunk = repositories.slice(i, i + 500);
      await opened.run(`INSERT INTO tags (repository, tag, digest, updated_at) VALUES ${chunk.map(() => '(?, ?, ?, ?)').join(', ')}`, chunk.flatMap((name) => [name, 'latest', `sha256:${'0'.repeat(64)}`, now]));
    }
    const browse = new BrowseStore(db);
    const filter = catalogFilter(new RepositoryAccess(true, [{ kind: 'namespace', name: 'pub', private: false }]), nobody);
    expect(await browse.searchTags({ prefix: 'l', limit: 50, filter })).to.deep.equal([]);
    expect(rows).to.be.at.most(TAG_SEARCH_MAX_ROWS + 1024);
    expect(queries).to.be.at.most(10);
    // Hidden tags within the bound crowd out nothing.
    await opened.run('INSERT INTO tags (repository, tag, digest, updated_at) VALUES (?, ?, ?, ?)', ['pub/app', 'latest', `sha256:${'0'.repeat(64)}`, now]);
    await opened.run("DELETE FROM tags WHERE repository LIKE 'corp/%' AND repository > ?", ['corp/r001000']);
    expect((await browse.searchTags({ prefix: 'lat', limit: 50, filter })).map((hit) => hit.repository)).to.deep.equal(['pub/app']);
  });
});
