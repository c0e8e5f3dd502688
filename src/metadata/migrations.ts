import type { Db } from './db.ts';

/**
 * Schema versions, applied in order, each once. Both dialects share the SQL
 * except for the binary column type.
 */
const MIGRATIONS: readonly { version: number; sql: (binary: string, dialect: Db['dialect']) => string[] }[] = [
  {
    version: 1,
    sql: (binary) => [
      `CREATE TABLE repositories (name TEXT PRIMARY KEY, created_at TEXT NOT NULL)`,
      `CREATE TABLE blobs (digest TEXT PRIMARY KEY, size BIGINT NOT NULL, created_at TEXT NOT NULL)`,
      `CREATE TABLE repository_blobs (
         repository TEXT NOT NULL REFERENCES repositories(name),
         digest TEXT NOT NULL REFERENCES blobs(digest),
         created_at TEXT NOT NULL,
         PRIMARY KEY (repository, digest))`,
      `CREATE INDEX repository_blobs_digest ON repository_blobs (digest)`,
      `CREATE TABLE manifests (
         repository TEXT NOT NULL REFERENCES repositories(name),
         digest TEXT NOT NULL,
         media_type TEXT NOT NULL,
         content ${binary} NOT NULL,
         size BIGINT NOT NULL,
         subject TEXT,
         artifact_type TEXT,
         annotations TEXT,
         created_at TEXT NOT NULL,
         PRIMARY KEY (repository, digest))`,
      `CREATE INDEX manifests_subject ON manifests (repository, subject)`,
      `CREATE TABLE manifest_references (
         repository TEXT NOT NULL,
         digest TEXT NOT NULL,
         child TEXT NOT NULL,
         kind TEXT NOT NULL,
         PRIMARY KEY (repository, digest, kind, child))`,
      `CREATE INDEX manifest_references_child ON manifest_references (child)`,
      `CREATE TABLE tags (
         repository TEXT NOT NULL,
         tag TEXT NOT NULL,
         digest TEXT NOT NULL,
         updated_at TEXT NOT NULL,
         PRIMARY KEY (repository, tag))`,
      `CREATE INDEX tags_digest ON tags (repository, digest)`,
      `CREATE TABLE uploads (
         id TEXT PRIMARY KEY,
         repository TEXT NOT NULL,
         did TEXT NOT NULL,
         created_at TEXT NOT NULL)`,
    ],
  },
  {
    // npm packages for the Verdaccio storage plugin (src/verdaccio).
    version: 2,
    sql: () => [
      `CREATE TABLE npm_packages (name TEXT PRIMARY KEY, document TEXT NOT NULL, updated_at TEXT NOT NULL)`,
      `CREATE TABLE npm_package_list (name TEXT PRIMARY KEY, added_at TEXT NOT NULL)`,
      `CREATE TABLE npm_tarballs (
         package TEXT NOT NULL,
         filename TEXT NOT NULL,
         digest TEXT NOT NULL,
         size BIGINT NOT NULL,
         created_at TEXT NOT NULL,
         PRIMARY KEY (package, filename))`,
      `CREATE INDEX npm_tarballs_digest ON npm_tarballs (digest)`,
      `CREATE TABLE npm_settings (key TEXT PRIMARY KEY, value TEXT NOT NULL)`,
      `CREATE TABLE npm_tokens (user_name TEXT NOT NULL, token_key TEXT NOT NULL, token TEXT NOT NULL, PRIMARY KEY (user_name, token_key))`,
    ],
  },
  {
    // Online garbage collection: blob lifecycle state, who pushed it, and
    // the candidates a pass has found unreferenced.
    version: 3,
    sql: () => [
      `ALTER TABLE blobs ADD COLUMN state TEXT NOT NULL DEFAULT 'live'`,
      `ALTER TABLE blobs ADD COLUMN did TEXT`,
      `CREATE TABLE gc_candidates (
         kind TEXT NOT NULL,
         repository TEXT NOT NULL,
         digest TEXT NOT NULL,
         size BIGINT NOT NULL,
         marked_at TEXT NOT NULL,
         PRIMARY KEY (kind, repository, digest))`,
    ],
  },
  {
    // Bounded listings and per-DID upload counts (docs/SECURITY.md). Pages are
    // ordered bytewise; on PostgreSQL that is the "C" collation, which the
    // primary keys' default collation cannot serve from their index.
    version: 4,
    sql: (_binary, dialect) => [
      `CREATE INDEX uploads_did ON uploads (did, created_at)`,
      ...(dialect === 'postgres'
        ? [`CREATE INDEX tags_page ON tags (repository, tag COLLATE "C")`, `CREATE INDEX repositories_page ON repositories (name COLLATE "C")`]
        : []),
    ],
  },
  {
    // When a blob entered `deleting`: only the pass that moved it there
    // releases it, unless it stays there past the GC's deletion timeout (its
    // registry died). Rows already deleting start their timeout now.
    version: 5,
    sql: () => [`ALTER TABLE blobs ADD COLUMN deleting_since TEXT`, `UPDATE blobs SET deleting_since = '${new Date().toISOString()}' WHERE state = 'deleting'`],
  },
  {
    // Which life of a blob: counted up each time a row comes back to `live`
    // (its bytes may now be another object), so the driver never hands out a
    // pull URL cached for an earlier one. Rows are never deleted (tombstones
    // stay), so a value never repeats.
    version: 6,
    sql: () => [`ALTER TABLE blobs ADD COLUMN generation INTEGER NOT NULL DEFAULT 0`],
  },
  {
    // The storage driver's name for an upload's durable state after its last
    // request, taken (set to NULL) by the next request that writes: a
    // registry whose live writer is in that state skips asking the hold.
    version: 7,
    sql: () => [`ALTER TABLE uploads ADD COLUMN state TEXT`],
  },
  {
    // One request at a time writes an upload, across every instance: the
    // holder, until when (milliseconds, by the database's clock), and the
    // epoch, counted up at each take, that the hold fences writes with.
    version: 8,
    sql: () => [`ALTER TABLE uploads ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0`, `ALTER TABLE uploads ADD COLUMN holder TEXT`, `ALTER TABLE uploads ADD COLUMN lease_until BIGINT`],
  },
  {
    // The Verdaccio plugin's tarball bytes, as the registry's blobs: `live`,
    // `deleting` while an unpublish releases them at the hold (by the
    // deletion it names), `deleted` after; a publish of the same bytes then
    // claims them again before it records a tarball.
    version: 9,
    sql: () => [`CREATE TABLE npm_blobs (digest TEXT PRIMARY KEY, state TEXT NOT NULL, deletion TEXT, deleting_since TEXT)`],
  },
  {
    // Whether an index lists a manifest, asked per manifest by GC and
    // retention: SQLite answered it from the primary key's repository prefix,
    // reading every reference of the repository each time.
    version: 10,
    sql: () => [`CREATE INDEX manifest_references_listed ON manifest_references (repository, child, kind)`],
  },
  {
    // A namespace's blob links, read by range for namespace quotas: on
    // PostgreSQL the range is bytewise, which the primary key's collation
    // cannot serve.
    version: 11,
    sql: (_binary, dialect) => (dialect === 'postgres' ? [`CREATE INDEX repository_blobs_range ON repository_blobs (repository COLLATE "C", digest)`] : []),
  },
  {
    // The web pages (src/registry/ui): a repository's tags newest first, tags
    // by name across repositories (search), and the last GC pass, which any
    // instance shows whichever instance ran it.
    version: 12,
    sql: (_binary, dialect) => {
      const c = dialect === 'postgres' ? ' COLLATE "C"' : '';
      return [
        `CREATE INDEX tags_pushed ON tags (repository, updated_at, tag${c})`,
        `CREATE INDEX tags_name ON tags (tag${c}, repository${c})`,
        `CREATE TABLE registry_state (key TEXT PRIMARY KEY, value TEXT NOT NULL, updated_at TEXT NOT NULL)`,
      ];
    },
  },
  {
    // The registry's accounts (src/metadata/accounts): users managed with
    // `holdfast user` or seeded from users.yaml (source 'file'), robot
    // accounts (an owner, no handle, no password), and access tokens, stored
    // as a SHA-256 of the secret. Every change bumps
    // `accounts_version` in registry_state, which each instance polls.
    version: 13,
    sql: () => [
      `CREATE TABLE users (username TEXT PRIMARY KEY, did TEXT NOT NULL, handle TEXT UNIQUE, password_hash TEXT NOT NULL, owner TEXT REFERENCES users (username) ON DELETE CASCADE, disabled INTEGER NOT NULL DEFAULT 0, source TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL)`,
      `CREATE INDEX users_owner ON users (owner)`,
      `CREATE TABLE access_tokens (id TEXT PRIMARY KEY, owner TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE, name TEXT NOT NULL, secret_hash TEXT NOT NULL, repositories TEXT NOT NULL, actions TEXT NOT NULL, created_at TEXT NOT NULL, expires_at TEXT NOT NULL, revoked_at TEXT, last_used_at TEXT)`,
      `CREATE INDEX access_tokens_owner ON access_tokens (owner, created_at)`,
      `CREATE INDEX access_tokens_revoked ON access_tokens (revoked_at)`,
    ],
  },
  {
    // Who may pull what (src/metadata/accounts/store.ts): a namespace or a
    // repository set public or private against the configured default, and
    // pull or push granted to other users. Changes bump accounts_version too.
    version: 14,
    sql: () => [
      `CREATE TABLE repository_visibility (kind TEXT NOT NULL, name TEXT NOT NULL, private INTEGER NOT NULL, updated_at TEXT NOT NULL, PRIMARY KEY (kind, name))`,
      `CREATE TABLE repository_grants (kind TEXT NOT NULL, name TEXT NOT NULL, grantee TEXT NOT NULL REFERENCES users (username) ON DELETE CASCADE, access TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (kind, name, grantee))`,
      `CREATE INDEX repository_grants_grantee ON repository_grants (grantee)`,
    ],
  },
  {
    // Events for other systems (src/metadata/events): one row per event and
    // endpoint, written in the transaction of the change it reports, so a
    // rolled-back change reports nothing. An endpoint gets a lane's events
    // (a repository's changes, or its pulls and quota refusals) in `seq`
    // order: their writers lock the repository row first. The body is the
    // CloudEvent as it will be sent, so every attempt sends the same bytes.
    version: 15,
    sql: (_binary, dialect) => [
      `CREATE TABLE event_outbox (seq ${dialect === 'postgres' ? 'BIGSERIAL PRIMARY KEY' : 'INTEGER PRIMARY KEY AUTOINCREMENT'}, id TEXT NOT NULL, endpoint TEXT NOT NULL, lane TEXT NOT NULL, repository TEXT NOT NULL, namespace TEXT NOT NULL, type TEXT NOT NULL, body TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, created_at BIGINT NOT NULL, next_at BIGINT NOT NULL, claimed_by TEXT, claimed_until BIGINT, finished_at BIGINT, last_error TEXT)`,
      `CREATE INDEX event_outbox_queue ON event_outbox (endpoint, state, seq)`,
      `CREATE INDEX event_outbox_lanes ON event_outbox (endpoint, state, lane, seq)`,
      `CREATE INDEX event_outbox_finished ON event_outbox (state, finished_at)`,
      `CREATE INDEX event_outbox_id ON event_outbox (id)`,
    ],
  },
  {
    // Costs that do not grow with the registry (docs/GC.md, docs/BENCHMARKS.md):
    // each repository counts its tags, so the tag limit is checked without
    // counting them; and GC reviews a queue of what may have lost its last
    // reference, filled by the transactions that remove references, instead
    // of scanning every blob and manifest. The queue starts with everything,
    // so the first pass after the upgrade checks each row once. Stored bytes
    // per DID are kept as blobs enter and leave the live state.
    version: 16,
    sql: () => [
      `ALTER TABLE repositories ADD COLUMN tag_count BIGINT NOT NULL DEFAULT 0`,
      `UPDATE repositories SET tag_count = (SELECT COUNT(*) FROM tags t WHERE t.repository = repositories.name)`,
      `CREATE TABLE gc_review (kind TEXT NOT NULL, repository TEXT NOT NULL, digest TEXT NOT NULL, gen BIGINT NOT NULL, PRIMARY KEY (kind, repository, digest))`,
      `INSERT INTO gc_review (kind, repository, digest, gen) SELECT 'manifest', repository, digest, 0 FROM manifests`,
      `INSERT INTO gc_review (kind, repository, digest, gen) SELECT 'blob', '', digest, 0 FROM blobs WHERE state <> 'deleted'`,
      `CREATE TABLE blob_usage (did TEXT PRIMARY KEY, bytes BIGINT NOT NULL)`,
      `INSERT INTO blob_usage (did, bytes) SELECT COALESCE(did, ''), SUM(size) FROM blobs WHERE state = 'live' GROUP BY COALESCE(did, '')`,
    ],
  },
];

/** The database was migrated by a newer Holdfast: this one would write it without keeping what the newer schema keeps. */
export class SchemaTooNewError extends Error {
  constructor(found: number) {
    super(`the metadata database is at schema version ${found}, newer than this Holdfast's ${SCHEMA_VERSION}; run the newer version (every instance on one database must run the same schema)`);
    this.name = 'SchemaTooNewError';
  }
}

export async function migrate(db: Db): Promise<number> {
  await db.run(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)`);
  const newest = Number((await db.get<{ version: number | string | null }>('SELECT MAX(version) AS version FROM schema_migrations'))?.version ?? 0);
  if (newest > SCHEMA_VERSION) throw new SchemaTooNewError(newest);
  const binary = db.dialect === 'postgres' ? 'BYTEA' : 'BLOB';
  let applied = 0;
  for (const migration of MIGRATIONS) {
    await db.transaction(async (tx) => {
      if (db.dialect === 'postgres') await tx.run('LOCK TABLE schema_migrations IN EXCLUSIVE MODE');
      const done = await tx.get('SELECT version FROM schema_migrations WHERE version = ?', [migration.version]);
      if (done) return;
      for (const statement of migration.sql(binary, db.dialect)) await tx.run(statement);
      await tx.run('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)', [migration.version, new Date().toISOString()]);
      applied++;
    });
  }
  return applied;
}

export const SCHEMA_VERSION = MIGRATIONS.at(-1)?.version ?? 0;
