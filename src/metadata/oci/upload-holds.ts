import { nowMs, type Db } from '../db.ts';

/** A request's hold on an upload (see `UploadHolds#take`). */
export interface UploadHold {
  /** Counted up at every take: the writer epoch the hold fences writes with. */
  readonly epoch: number;
  /** The driver's state the previous holder left, handed to this one (and cleared in the row). */
  readonly state?: string;
  /** The previous holder's lease ran out instead of being given up: it may still be writing. */
  readonly tookOver: boolean;
}

/**
 * One request at a time writes an upload, across every registry instance
 * sharing the database: the upload's row names its holder and until when
 * (by the database's clock, so instances' clocks do not matter). A holder
 * renews its lease while it works and gives it up when done; a holder that
 * died or stalled loses it when it runs out.
 */
export class UploadHolds {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  /**
   * Takes the upload for `holder` for `leaseMs`, if nobody holds it or its
   * holder's lease ran out: `busy` while another request holds it, `unknown`
   * when there is no such upload.
   */
  async take(id: string, holder: string, leaseMs: number): Promise<UploadHold | 'busy' | 'unknown'> {
    if (this.#db.dialect === 'postgres') return this.#takeInOneStatement(id, holder, leaseMs);
    return this.#db.transaction(async (tx) => {
      const now = nowMs(tx);
      const row = await tx.get<{ epoch: number | string; holder: string | null; state: string | null; expired: number | string | boolean | null }>(
        `SELECT epoch, holder, state, lease_until < ${now} AS expired FROM uploads WHERE id = ?${tx.dialect === 'postgres' ? ' FOR UPDATE' : ''}`,
        [id],
      );
      if (!row) return 'unknown';
      const tookOver = row.holder !== null;
      if (tookOver && !isTrue(row.expired)) return 'busy';
      const epoch = Number(row.epoch) + 1;
      await tx.run(`UPDATE uploads SET epoch = ?, holder = ?, lease_until = ${now} + ?, state = NULL WHERE id = ?`, [epoch, holder, leaseMs, id]);
      return { epoch, tookOver, ...(row.state !== null ? { state: row.state } : {}) };
    });
  }

  /** `take` in one round trip to Postgres, as every PATCH takes its upload: a locked read of the old row, and the update. */
  async #takeInOneStatement(id: string, holder: string, leaseMs: number): Promise<UploadHold | 'busy' | 'unknown'> {
    const now = nowMs(this.#db);
    const taken = await this.#db.get<{ epoch: number | string; state: string | null; holder: string | null }>(
      `WITH old AS (SELECT epoch, holder, state, lease_until FROM uploads WHERE id = ? FOR UPDATE)
       UPDATE uploads u SET epoch = old.epoch + 1, holder = ?, lease_until = ${now} + ?, state = NULL
       FROM old WHERE u.id = ? AND (old.holder IS NULL OR old.lease_until < ${now})
       RETURNING u.epoch, old.state, old.holder`,
      [id, holder, leaseMs, id],
    );
    if (taken) return { epoch: Number(taken.epoch), tookOver: taken.holder !== null, ...(taken.state !== null ? { state: taken.state } : {}) };
    return (await this.#db.get('SELECT 1 AS found FROM uploads WHERE id = ?', [id])) ? 'busy' : 'unknown';
  }

  /** Extends the lease to `leaseMs` from now; false when `holder` no longer holds `epoch`. */
  async renew(id: string, holder: string, epoch: number, leaseMs: number): Promise<boolean> {
    return (await this.#db.run(`UPDATE uploads SET lease_until = ${nowMs(this.#db)} + ? WHERE id = ? AND epoch = ? AND holder = ?`, [leaseMs, id, epoch, holder])) === 1;
  }

  /** Gives the upload up, leaving `state` for the next holder; false when `holder` no longer held `epoch`. */
  async release(id: string, holder: string, epoch: number, state: string | undefined): Promise<boolean> {
    return (await this.#db.run('UPDATE uploads SET holder = NULL, lease_until = NULL, state = ? WHERE id = ? AND epoch = ? AND holder = ?', [state ?? null, id, epoch, holder])) === 1;
  }
}

function isTrue(value: number | string | boolean | null): boolean {
  return value === true || value === 1 || value === '1' || value === 't';
}
