import Database from 'better-sqlite3';
import pg from 'pg';
import { migrate } from './migrations.ts';

export type SqlValue = string | number | bigint | Buffer | null;
export type Row = Record<string, unknown>;

/**
 * The little SQL surface the metadata store needs. Statements use `?`
 * placeholders; the Postgres adapter numbers them.
 */
export interface Db {
  readonly dialect: 'sqlite' | 'postgres';
  run(sql: string, params?: readonly SqlValue[]): Promise<number>;
  all<T extends Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  get<T extends Row>(sql: string, params?: readonly SqlValue[]): Promise<T | undefined>;
  transaction<T>(work: (tx: Db) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * better-sqlite3 in WAL mode, one connection. Every statement and every
 * transaction runs through one async lock, so a statement from another
 * request can never land inside an open transaction (and be rolled back
 * with it). Transaction bodies get a handle that bypasses the lock.
 */
export class SqliteDb implements Db {
  readonly dialect = 'sqlite' as const;
  readonly #db: Database.Database;
  readonly #direct: Db;
  #lock: Promise<unknown> = Promise.resolve();

  constructor(file: string) {
    this.#db = new Database(file);
    this.#db.pragma('journal_mode = WAL');
    this.#db.pragma('synchronous = NORMAL');
    this.#db.pragma('foreign_keys = ON');
    this.#db.pragma('busy_timeout = 5000');
    const db = this.#db;
    this.#direct = {
      dialect: 'sqlite',
      run: async (sql, params = []) => db.prepare(sql).run(...params).changes,
      all: async <T extends Row>(sql: string, params: readonly SqlValue[] = []) => db.prepare(sql).all(...params) as T[],
      get: async <T extends Row>(sql: string, params: readonly SqlValue[] = []) => db.prepare(sql).get(...params) as T | undefined,
      transaction: (work) => work(this.#direct),
      close: async () => {},
    };
  }

  run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return this.#serialized(() => this.#direct.run(sql, params));
  }

  all<T extends Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return this.#serialized(() => this.#direct.all<T>(sql, params));
  }

  get<T extends Row>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return this.#serialized(() => this.#direct.get<T>(sql, params));
  }

  transaction<T>(work: (tx: Db) => Promise<T>): Promise<T> {
    return this.#serialized(async () => {
      this.#db.exec('BEGIN IMMEDIATE');
      try {
        const value = await work(this.#direct);
        this.#db.exec('COMMIT');
        return value;
      } catch (err) {
        this.#db.exec('ROLLBACK');
        throw err;
      }
    });
  }

  async close(): Promise<void> {
    await this.#lock.catch(() => undefined);
    this.#db.close();
  }

  #serialized<T>(work: () => Promise<T>): Promise<T> {
    const result = this.#lock.catch(() => undefined).then(work);
    this.#lock = result.catch(() => undefined);
    return result;
  }
}

/** A pg pool; each transaction gets its own client. */
export class PostgresDb implements Db {
  readonly dialect = 'postgres' as const;
  readonly #pool: pg.Pool | undefined;
  readonly #client: pg.PoolClient | undefined;

  constructor(source: { connectionString: string; max?: number } | pg.PoolClient) {
    if ('query' in source) {
      this.#client = source;
    } else {
      this.#pool = new pg.Pool({ connectionString: source.connectionString, max: source.max ?? 10 });
      this.#pool.on('error', () => {});
    }
  }

  async run(sql: string, params: readonly SqlValue[] = []): Promise<number> {
    return (await this.#query(sql, params)).rowCount ?? 0;
  }

  async all<T extends Row>(sql: string, params: readonly SqlValue[] = []): Promise<T[]> {
    return (await this.#query(sql, params)).rows as T[];
  }

  async get<T extends Row>(sql: string, params: readonly SqlValue[] = []): Promise<T | undefined> {
    return (await this.#query(sql, params)).rows[0] as T | undefined;
  }

  async transaction<T>(work: (tx: Db) => Promise<T>): Promise<T> {
    if (this.#client) return work(this);
    const client = await (this.#pool as pg.Pool).connect();
    try {
      await client.query('BEGIN');
      const value = await work(new PostgresDb(client));
      await client.query('COMMIT');
      return value;
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      throw err;
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    await this.#pool?.end();
  }

  #query(sql: string, params: readonly SqlValue[]) {
    let index = 0;
    const numbered = sql.replace(/\?/g, () => `$${++index}`);
    const values = params.map((value) => (typeof value === 'bigint' ? value.toString() : value));
    return (this.#client ?? (this.#pool as pg.Pool)).query(numbered, values);
  }
}

/** Row locks where the dialect has them; SQLite transactions already run one at a time. */
export function forUpdate(db: Db): string {
  return db.dialect === 'postgres' ? ' FOR UPDATE' : '';
}

/** The database's clock in milliseconds, as SQL: what instances compare times by, whatever their own clocks say. */
export function nowMs(db: Db): string {
  return db.dialect === 'postgres' ? `(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::bigint` : `CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)`;
}

/** Where the metadata lives: a SQLite file or a Postgres database. */
export type DatabaseConfig = { kind: 'sqlite'; path: string } | { kind: 'postgres'; url: string; maxConnections?: number };

/** Opens the metadata database and brings its schema up to date (the registry's and the npm plugin's tables are one schema). */
export async function openDatabase(config: DatabaseConfig): Promise<Db> {
  const db = config.kind === 'sqlite' ? new SqliteDb(config.path) : new PostgresDb({ connectionString: config.url, max: config.maxConnections });
  try {
    await migrate(db);
  } catch (err) {
    await db.close();
    throw err;
  }
  return db;
}
