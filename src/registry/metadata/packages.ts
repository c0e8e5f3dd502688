import type { Db } from './db.ts';

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

  /** Records a tarball; false when the filename is already taken. */
  async addTarball(record: TarballRecord): Promise<boolean> {
    const changed = await this.#db.run(
      'INSERT INTO npm_tarballs (package, filename, digest, size, created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (package, filename) DO NOTHING',
      [record.package, record.filename, record.digest, record.size, new Date().toISOString()],
    );
    return changed > 0;
  }

  /** Removes the record; resolves to how many records still point at its digest. */
  async removeTarball(pkg: string, filename: string): Promise<{ removed?: TarballRecord; stillReferenced: number }> {
    return this.#db.transaction(async (tx) => {
      const row = await tx.get<{ digest: string; size: number | string }>('SELECT digest, size FROM npm_tarballs WHERE package = ? AND filename = ?', [pkg, filename]);
      if (!row) return { stillReferenced: 0 };
      await tx.run('DELETE FROM npm_tarballs WHERE package = ? AND filename = ?', [pkg, filename]);
      const count = await tx.get<{ n: number | string }>('SELECT COUNT(*) AS n FROM npm_tarballs WHERE digest = ?', [row.digest]);
      return { removed: { package: pkg, filename, digest: row.digest, size: Number(row.size) }, stillReferenced: Number(count?.n ?? 0) };
    });
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
