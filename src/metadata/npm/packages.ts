import { randomUUID } from 'node:crypto';
import type { Db } from '../db.ts';

/**
 * A deletion still `deleting` after this long is taken to be abandoned (its
 * Verdaccio died mid-release), and a publish of the same bytes takes over.
 * Far above what a release takes (seconds, plus the driver's retries).
 */
const ABANDONED_DELETION_MS = 10 * 60_000;

/**
 * npm package metadata for the Verdaccio storage plugin, in the registry's
 * own database: package documents, the local package list, tarball records
 * (filename → content digest in the hold), settings and tokens.
 */
export interface TarballRecord {
  package: string;
  filename: string;
  digest: string;
  size: number;
}

export class PackageStore {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  async readDocument(name: string): Promise<unknown | undefined> {
    const row = await this.#db.get<{ document: string }>('SELECT document FROM npm_packages WHERE name = ?', [name]);
    return row ? (JSON.parse(row.document) as unknown) : undefined;
  }

  /** Creates the document; false when it already exists. */
  async createDocument(name: string, document: unknown): Promise<boolean> {
    const changed = await this.#db.run('INSERT INTO npm_packages (name, document, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO NOTHING', [
      name,
      JSON.stringify(document),
      new Date().toISOString(),
    ]);
    return changed > 0;
  }

  async saveDocument(name: string, document: unknown): Promise<void> {
    await this.#db.run(
      `INSERT INTO npm_packages (name, document, updated_at) VALUES (?, ?, ?)
       ON CONFLICT (name) DO UPDATE SET document = excluded.document, updated_at = excluded.updated_at`,
      [name, JSON.stringify(document), new Date().toISOString()],
    );
  }

  async deleteDocument(name: string): Promise<boolean> {
    return (await this.#db.run('DELETE FROM npm_packages WHERE name = ?', [name])) > 0;
  }

  async addToList(name: string): Promise<void> {
    await this.#db.run('INSERT INTO npm_package_list (name, added_at) VALUES (?, ?) ON CONFLICT (name) DO NOTHING', [name, new Date().toISOString()]);
  }

  async removeFromList(name: string): Promise<void> {
    await this.#db.run('DELETE FROM npm_package_list WHERE name = ?', [name]);
  }

  async list(): Promise<{ name: string; updatedAt: Date }[]> {
    const rows = await this.#db.all<{ name: string; updated_at: string | null }>(
      'SELECT l.name, p.updated_at FROM npm_package_list l LEFT JOIN npm_packages p ON p.name = l.name ORDER BY l.name',
    );
    return rows.map((row) => ({ name: row.name, updatedAt: new Date(row.updated_at ?? 0) }));
  }

  async getTarball(pkg: string, filename: string): Promise<TarballRecord | undefined> {
    const row = await this.#db.get<{ digest: string; size: number | string }>('SELECT digest, size FROM npm_tarballs WHERE package = ? AND filename = ?', [pkg, filename]);
    return row ? { package: pkg, filename, digest: row.digest, size: Number(row.size) } : undefined;
  }

  /**
   * Records a tarball whose bytes this plugin has just published (or found)
   * at the hold: `added`, or `taken` when the filename is. `deleting` while
   * an unpublish of the same bytes releases them at the hold: wait for it.
   * `reclaim` when a deletion of these bytes started since (it may have
   * dropped the claim this publish wrote, and deleted the bytes): claim them
   * again at the hold, then call with `reclaimed`.
   */
  async addTarball(record: TarballRecord, options: { reclaimed?: boolean } = {}): Promise<'added' | 'taken' | 'deleting' | 'reclaim'> {
    return this.#db.transaction(async (tx) => {
      const state = await lockedBlobState(tx, record.digest);
      if (state.state === 'deleting' && !deletionAbandoned(state.deletingSince)) return 'deleting';
      if (state.state !== 'live') {
        if (!options.reclaimed) return 'reclaim';
        await tx.run("UPDATE npm_blobs SET state = 'live', deletion = NULL, deleting_since = NULL WHERE digest = ?", [record.digest]);
      }
      const changed = await tx.run(
        'INSERT INTO npm_tarballs (package, filename, digest, size, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (package, filename) DO NOTHING',
        [record.package, record.filename, record.digest, record.size, new Date().toISOString()],
      );
      return changed > 0 ? 'added' : 'taken';
    });
  }

  /**
   * Removes the record. When it was the last for its bytes, they are marked
   * as being deleted, and `deletion` names that deletion: release the bytes
   * at the hold, then `finishDeletion`.
   */
  async removeTarball(pkg: string, filename: string): Promise<{ removed?: TarballRecord; deletion?: string }> {
    return this.#db.transaction(async (tx) => {
      const row = await tx.get<{ digest: string; size: number | string }>('SELECT digest, size FROM npm_tarballs WHERE package = ? AND filename = ?', [pkg, filename]);
      if (!row) return {};
      await lockedBlobState(tx, row.digest);
      await tx.run('DELETE FROM npm_tarballs WHERE package = ? AND filename = ?', [pkg, filename]);
      const removed = { package: pkg, filename, digest: row.digest, size: Number(row.size) };
      const count = await tx.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM npm_tarballs WHERE digest = ?', [row.digest]);
      if (Number(count?.n ?? 0) > 0) return { removed };
      const deletion = randomUUID();
      await tx.run("UPDATE npm_blobs SET state = 'deleting', deletion = ?, deleting_since = ? WHERE digest = ?", [deletion, new Date().toISOString(), row.digest]);
      return { removed, deletion };
    });
  }

  /** Whether the deletion `removeTarball` started is still the bytes' deletion (no publish took it over as abandoned). */
  async deletionCurrent(digest: string, deletion: string): Promise<boolean> {
    return (await this.#db.get("SELECT 1 AS current FROM npm_blobs WHERE digest = ? AND state = 'deleting' AND deletion = ?", [digest, deletion])) !== undefined;
  }

  /** The bytes' release that `removeTarball` started is over (or failed): they are `deleted`, unless a publish has revived them. */
  async finishDeletion(digest: string, deletion: string): Promise<void> {
    await this.#db.run("UPDATE npm_blobs SET state = 'deleted', deletion = NULL WHERE digest = ? AND deletion = ?", [digest, deletion]);
  }

  /** Every digest a tarball record names, once each. */
  async tarballDigests(): Promise<string[]> {
    return (await this.#db.all<{ digest: string }>('SELECT DISTINCT digest FROM npm_tarballs ORDER BY digest')).map((row) => row.digest);
  }

  async getSetting(key: string): Promise<string | undefined> {
    return (await this.#db.get<{ value: string }>('SELECT value FROM npm_settings WHERE key = ?', [key]))?.value;
  }

  async setSetting(key: string, value: string): Promise<void> {
    await this.#db.run('INSERT INTO npm_settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value', [key, value]);
  }

  async saveToken(user: string, key: string, token: unknown): Promise<void> {
    await this.#db.run('INSERT INTO npm_tokens (user_name, token_key, token) VALUES (?, ?, ?) ON CONFLICT (user_name, token_key) DO UPDATE SET token = excluded.token', [
      user,
      key,
      JSON.stringify(token),
    ]);
  }

  async deleteToken(user: string, key: string): Promise<void> {
    await this.#db.run('DELETE FROM npm_tokens WHERE user_name = ? AND token_key = ?', [user, key]);
  }

  async readTokens(user: string): Promise<unknown[]> {
    const rows = await this.#db.all<{ token: string }>('SELECT token FROM npm_tokens WHERE user_name = ? ORDER BY token_key', [user]);
    return rows.map((row) => JSON.parse(row.token) as unknown);
  }
}

/** The bytes' row, created `live` if it is not there yet, locked for the transaction. */
async function lockedBlobState(tx: Db, digest: string): Promise<{ state: string; deletingSince: string | null }> {
  await tx.run("INSERT INTO npm_blobs (digest, state) VALUES (?, 'live') ON CONFLICT (digest) DO NOTHING", [digest]);
  const row = await tx.get<{ state: string; deleting_since: string | null }>(
    `SELECT state, deleting_since FROM npm_blobs WHERE digest = ?${tx.dialect === 'postgres' ? ' FOR UPDATE' : ''}`,
    [digest],
  );
  return { state: row?.state ?? 'live', deletingSince: row?.deleting_since ?? null };
}

function deletionAbandoned(since: string | null): boolean {
  return since !== null && Date.now() - Date.parse(since) > ABANDONED_DELETION_MS;
}
