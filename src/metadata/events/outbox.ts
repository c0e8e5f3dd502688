import { nowMs, type Db, type SqlValue } from '../db.ts';

/** `pending` until an attempt succeeds (`delivered`) or the retries run out (`dead`, until redelivered). */
export type OutboxState = 'pending' | 'delivered' | 'dead';

/** One event for one endpoint, as its writer queues it. */
export interface OutboxEntry {
  /** The event's id, the same in every attempt and for every endpoint. */
  id: string;
  endpoint: string;
  /**
   * What orders it: an endpoint gets one lane's events in `seq` order, one at
   * a time. A repository's changes share a lane; its pulls and quota
   * refusals have another (see `reportsLane`).
   */
  lane: string;
  /** `''` for an event about no repository (a GC pass). */
  repository: string;
  namespace: string;
  type: string;
  /** The request body every attempt sends. */
  body: string;
}

export interface OutboxRow extends OutboxEntry {
  seq: number;
  state: OutboxState;
  attempts: number;
  /** Milliseconds (the database's clock) when it was queued, or queued again by a redelivery. */
  createdAt: number;
  /** No attempt before this (milliseconds). */
  nextAt: number;
  claimedUntil?: number;
  finishedAt?: number;
  lastError?: string;
}

/** The lane of a repository's reports (pulls, quota refusals): apart from its changes, so they never hold those up. */
export function reportsLane(repository: string): string {
  // `:` is in no repository name.
  return `reports:${repository}`;
}

export interface OutboxDepth {
  endpoint: string;
  namespace: string;
  type: string;
  state: 'pending' | 'dead';
  count: number;
  /** When the oldest of them was queued (milliseconds). */
  oldest: number;
}

/** How many of `depth`'s rows are `endpoint`'s in `state`. */
export function depthCount(depth: readonly OutboxDepth[], endpoint: string, state: OutboxDepth['state']): number {
  return depth.reduce((sum, row) => (row.endpoint === endpoint && row.state === state ? sum + row.count : sum), 0);
}

/**
 * The events outbox (docs/EVENTS.md): rows are appended inside the change's
 * own transaction, then claimed, delivered and retried by every registry
 * instance. Delivery order is `seq` per endpoint and lane (a repository's
 * changes, or its reports): an instance delivers only a lane's oldest
 * pending row, and only once it holds its claim, so two instances never send
 * one lane's events at once.
 */
export class EventOutbox {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /**
   * Queues entries inside the caller's transaction. On PostgreSQL the rows of
   * the repositories they report are locked first: a later change to the
   * same repository waits for this commit, so its `seq` is higher and no
   * instance can see it before this one. Reports that change nothing (a
   * pull) pass `ordered: false` and take no lock.
   */
  static async append(tx: Db, entries: readonly OutboxEntry[], options: { ordered: boolean }): Promise<void> {
    if (entries.length === 0) return;
    if (tx.dialect === 'postgres' && options.ordered) {
      for (const repository of [...new Set(entries.map((entry) => entry.repository).filter((name) => name !== ''))].sort()) {
        // Not FOR UPDATE: the change's own rows hold a key-share lock on this row (their foreign keys), and two
        // transactions upgrading theirs would deadlock. NO KEY UPDATE conflicts with itself only.
        await tx.run('SELECT 1 FROM repositories WHERE name = ? FOR NO KEY UPDATE', [repository]);
      }
    }
    const values: SqlValue[] = [];
    for (const entry of entries) values.push(entry.id, entry.endpoint, entry.lane, entry.repository, entry.namespace, entry.type, entry.body);
    const now = nowMs(tx);
    await tx.run(
      `INSERT INTO event_outbox (id, endpoint, lane, repository, namespace, type, body, state, created_at, next_at) VALUES ${entries.map(() => `(?, ?, ?, ?, ?, ?, ?, 'pending', ${now}, ${now})`).join(', ')}`,
      values,
    );
  }

  /** How far the database's clock is ahead of this process's (milliseconds): every time in the outbox is the database's. */
  async clockSkew(): Promise<number> {
    const before = Date.now();
    const row = await this.#db.get<{ now: number | string }>(`SELECT ${nowMs(this.#db)} AS now`);
    return Number(row?.now) - Math.round((before + Date.now()) / 2);
  }

  /**
   * Seqs an instance may attempt now for an endpoint: the oldest pending
   * event of each lane, if it is due and nobody holds it. Walks the lanes
   * with pending events in name order from `after`, one index probe each
   * (never the events queued behind a lane's first), at most `lanes` of them:
   * a pass costs the same however deep the queue, and one lane's backlog
   * never hides another. Resolves to the seqs and where the next pass should
   * go on from (`''`: the start).
   */
  async due(endpoint: string, now: number, limits: { want: number; lanes: number; after: string }): Promise<{ seqs: number[]; next: string }> {
    const rows = await this.#db.all<{ seq: number | string; lane: string; next_at: number | string; claimed_until: number | string | null }>(
      `WITH RECURSIVE lanes (lane, n) AS (
         SELECT (SELECT MIN(lane) FROM event_outbox WHERE endpoint = ? AND state = 'pending' AND lane > ?), 1
         UNION ALL
         SELECT (SELECT MIN(o.lane) FROM event_outbox o WHERE o.endpoint = ? AND o.state = 'pending' AND o.lane > lanes.lane), lanes.n + 1
         FROM lanes WHERE lanes.lane IS NOT NULL AND lanes.n < ?
       )
       SELECT h.seq, h.lane, h.next_at, h.claimed_until FROM lanes
       JOIN event_outbox h ON h.seq = (SELECT MIN(o.seq) FROM event_outbox o WHERE o.endpoint = ? AND o.state = 'pending' AND o.lane = lanes.lane)
       ORDER BY lanes.n`,
      [endpoint, limits.after, endpoint, limits.lanes, endpoint],
    );
    const seqs: number[] = [];
    for (const row of rows) {
      if (Number(row.next_at) <= now && (row.claimed_until === null || Number(row.claimed_until) < now)) seqs.push(Number(row.seq));
      if (seqs.length === limits.want) return { seqs, next: row.lane };
    }
    return { seqs, next: rows.length === limits.lanes ? (rows.at(-1)?.lane ?? '') : '' };
  }

  /**
   * Claims rows until `until` for `claimer` and returns them. A row is
   * claimed only if it is still pending, free, and its lane's oldest
   * pending row for the endpoint: an older one may have committed since the
   * lanes were read.
   */
  async claim(seqs: readonly number[], claimer: string, until: number, now: number): Promise<OutboxRow[]> {
    if (seqs.length === 0) return [];
    const rows = await this.#db.all<RawRow>(
      `UPDATE event_outbox SET claimed_by = ?, claimed_until = ? WHERE seq IN (${seqs.map(() => '?').join(', ')}) AND state = 'pending' AND (claimed_until IS NULL OR claimed_until < ?)
       AND NOT EXISTS (SELECT 1 FROM event_outbox older WHERE older.endpoint = event_outbox.endpoint AND older.state = 'pending' AND older.lane = event_outbox.lane AND older.seq < event_outbox.seq)
       RETURNING ${COLUMNS}`,
      [claimer, until, ...seqs, now],
    );
    return rows.map(toRow).sort((a, b) => a.seq - b.seq);
  }

  async delivered(seq: number, now: number): Promise<void> {
    await this.#db.run(
      "UPDATE event_outbox SET state = 'delivered', attempts = attempts + 1, finished_at = ?, claimed_by = NULL, claimed_until = NULL, last_error = NULL WHERE seq = ? AND state = 'pending'",
      [now, seq],
    );
  }

  /** Records a failed attempt: tried again at `nextAt`, or dead. */
  async failed(seq: number, now: number, outcome: { nextAt: number; dead: boolean; error: string }): Promise<void> {
    await this.#db.run(
      `UPDATE event_outbox SET state = ?, attempts = attempts + 1, next_at = ?, finished_at = ?, claimed_by = NULL, claimed_until = NULL, last_error = ? WHERE seq = ? AND state = 'pending'`,
      [outcome.dead ? 'dead' : 'pending', outcome.nextAt, outcome.dead ? now : null, outcome.error.slice(0, 500), seq],
    );
  }

  /** Newest first, a page at a time (`before`: a seq from the previous page). */
  async list(filter: { endpoint?: string; state?: OutboxState; before?: number; limit: number }): Promise<OutboxRow[]> {
    const conditions: [string, SqlValue | undefined][] = [
      ['endpoint = ?', filter.endpoint],
      ['state = ?', filter.state],
      ['seq < ?', filter.before],
    ];
    const used = conditions.filter(([, value]) => value !== undefined);
    const where = used.map(([sql]) => sql);
    const params = used.map(([, value]) => value as SqlValue);
    const rows = await this.#db.all<RawRow>(`SELECT ${COLUMNS} FROM event_outbox${where.length > 0 ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY seq DESC LIMIT ?`, [...params, filter.limit]);
    return rows.map(toRow);
  }

  /**
   * Queues dead (or, by seq or id, also delivered) rows again, with their
   * attempts and age starting over. Resolves to how many.
   */
  async redeliver(which: { seqs: readonly number[] } | { ids: readonly string[] } | { deadOf: string | undefined }): Promise<number> {
    const now = nowMs(this.#db);
    const set = `state = 'pending', attempts = 0, created_at = ${now}, next_at = ${now}, finished_at = NULL, claimed_by = NULL, claimed_until = NULL, last_error = NULL`;
    if ('deadOf' in which) {
      const endpoint = which.deadOf === undefined ? '' : ' AND endpoint = ?';
      return this.#db.run(`UPDATE event_outbox SET ${set} WHERE state = 'dead'${endpoint}`, which.deadOf === undefined ? [] : [which.deadOf]);
    }
    const keys = 'seqs' in which ? which.seqs : which.ids;
    if (keys.length === 0) return 0;
    return this.#db.run(`UPDATE event_outbox SET ${set} WHERE ${'seqs' in which ? 'seq' : 'id'} IN (${keys.map(() => '?').join(', ')}) AND state <> 'pending'`, keys);
  }

  /** Undelivered rows per endpoint, namespace, type and state: one pass over them, which the queue caps bound. */
  async depth(): Promise<OutboxDepth[]> {
    const rows = await this.#db.all<{ endpoint: string; namespace: string; type: string; state: 'pending' | 'dead'; count: number | string; oldest: number | string }>(
      "SELECT endpoint, namespace, type, state, COUNT(*) AS count, MIN(created_at) AS oldest FROM event_outbox WHERE state IN ('pending', 'dead') GROUP BY endpoint, namespace, type, state",
    );
    return rows.map((row) => ({ endpoint: row.endpoint, namespace: row.namespace, type: row.type, state: row.state, count: Number(row.count), oldest: Number(row.oldest) }));
  }

  /**
   * Deletes up to `limit` delivered rows finished before `deliveredBefore` or
   * older than the newest `keepDelivered` events, and dead ones that died
   * before `deadBefore`; resolves to how many.
   */
  async prune(options: { deliveredBefore: number; keepDelivered: number; deadBefore: number; limit: number }): Promise<number> {
    const newest = Number((await this.#db.get<{ seq: number | string | null }>('SELECT MAX(seq) AS seq FROM event_outbox'))?.seq ?? 0);
    const delivered = await this.#db.run(
      "DELETE FROM event_outbox WHERE seq IN (SELECT seq FROM event_outbox WHERE state = 'delivered' AND (finished_at < ? OR seq <= ?) ORDER BY finished_at LIMIT ?)",
      [options.deliveredBefore, newest - options.keepDelivered, options.limit],
    );
    const dead = await this.#db.run("DELETE FROM event_outbox WHERE seq IN (SELECT seq FROM event_outbox WHERE state = 'dead' AND finished_at < ? ORDER BY finished_at LIMIT ?)", [
      options.deadBefore,
      options.limit,
    ]);
    return delivered + dead;
  }

  /** Deletes an endpoint's oldest dead rows, `count` at most (dead rows past the cap, or `holdfast events purge`); resolves to how many. */
  async purgeDead(endpoint: string | undefined, count: number): Promise<number> {
    const which = endpoint === undefined ? '' : ' AND endpoint = ?';
    return this.#db.run(`DELETE FROM event_outbox WHERE seq IN (SELECT seq FROM event_outbox WHERE state = 'dead'${which} ORDER BY seq LIMIT ?)`, [...(endpoint === undefined ? [] : [endpoint]), count]);
  }

  /**
   * Deletes up to `limit` rows, in any state, queued before `before` for an
   * endpoint not in `known` (it left the config); resolves to how many.
   */
  async pruneOrphans(known: readonly string[], before: number, limit: number): Promise<number> {
    const others = known.length === 0 ? '' : ` AND endpoint NOT IN (${known.map(() => '?').join(', ')})`;
    return this.#db.run(`DELETE FROM event_outbox WHERE seq IN (SELECT seq FROM event_outbox WHERE created_at < ?${others} LIMIT ?)`, [before, ...known, limit]);
  }
}

const COLUMNS = 'seq, id, endpoint, lane, repository, namespace, type, body, state, attempts, created_at, next_at, claimed_until, finished_at, last_error';

type RawRow = {
  seq: number | string;
  id: string;
  endpoint: string;
  lane: string;
  repository: string;
  namespace: string;
  type: string;
  body: string;
  state: OutboxState;
  attempts: number | string;
  created_at: number | string;
  next_at: number | string;
  claimed_until: number | string | null;
  finished_at: number | string | null;
  last_error: string | null;
};

function toRow(row: RawRow): OutboxRow {
  return {
    seq: Number(row.seq),
    id: row.id,
    endpoint: row.endpoint,
    lane: row.lane,
    repository: row.repository,
    namespace: row.namespace,
    type: row.type,
    body: row.body,
    state: row.state,
    attempts: Number(row.attempts),
    createdAt: Number(row.created_at),
    nextAt: Number(row.next_at),
    ...(row.claimed_until === null ? {} : { claimedUntil: Number(row.claimed_until) }),
    ...(row.finished_at === null ? {} : { finishedAt: Number(row.finished_at) }),
    ...(row.last_error === null ? {} : { lastError: row.last_error }),
  };
}
