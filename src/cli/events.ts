import type { Command } from 'commander';
import { openDatabase } from '../metadata/db.ts';
import { EventOutbox, type OutboxRow, type OutboxState } from '../metadata/events/outbox.ts';
import { loadRegistryConfig } from '../registry/config.ts';
import { printJson, readConfig } from './io.ts';
import { UsageError } from './usage-error.ts';

const STATES: readonly OutboxState[] = ['pending', 'delivered', 'dead'];

/** `holdfast events list|redeliver`: the outbox, read and requeued straight from the metadata database. */
export function registerEventCommands(cli: Command): void {
  const events = cli.command('events').description('the webhook outbox: list events, redeliver or purge dead ones (docs/EVENTS.md)');

  events
    .command('list')
    .description('events in the outbox, newest first (JSON lines: seq, id, endpoint, type, state, attempts, last error)')
    .requiredOption('--config <file>', 'the registry config')
    .option('--state <state>', `only events in this state: ${STATES.join(', ')}`)
    .option('--endpoint <name>', 'only events for this endpoint')
    .option('--limit <n>', 'at most this many (1 to 10000)', '100')
    .option('--before <seq>', 'only events older than this seq (the next page)')
    .option('--body', 'include each event as sent')
    .action(async (options: { config: string; state?: string; endpoint?: string; limit: string; before?: string; body?: boolean }) => {
      if (options.state !== undefined && !STATES.includes(options.state as OutboxState)) throw new UsageError(`--state is one of ${STATES.join(', ')}`);
      const limit = count(options.limit, '--limit', 10_000);
      await withOutbox(options.config, async (outbox) => {
        const rows = await outbox.list({
          limit,
          ...(options.state === undefined ? {} : { state: options.state as OutboxState }),
          ...(options.endpoint === undefined ? {} : { endpoint: options.endpoint }),
          ...(options.before === undefined ? {} : { before: count(options.before, '--before', Number.MAX_SAFE_INTEGER) }),
        });
        for (const row of rows) console.log(JSON.stringify(describe(row, options.body === true)));
      });
    });

  events
    .command('redeliver')
    .description('queue events again, attempts and age starting over: by seq or event id, or every dead one')
    .requiredOption('--config <file>', 'the registry config')
    .argument('[which...]', 'seqs or event ids (from `events list`)')
    .option('--dead', 'every dead event (of --endpoint, if given)')
    .option('--endpoint <name>', 'with --dead: only this endpoint')
    .action(async (which: string[], options: { config: string; dead?: boolean; endpoint?: string }) => {
      if ((which.length > 0) === (options.dead === true)) throw new UsageError('name seqs or event ids, or pass --dead');
      if (options.endpoint !== undefined && !options.dead) throw new UsageError('--endpoint goes with --dead');
      if (which.length > 1000) throw new UsageError('at most 1000 at once');
      await withOutbox(options.config, async (outbox) => {
        let requeued: number;
        if (options.dead) requeued = await outbox.redeliver({ deadOf: options.endpoint });
        else if (which.every((key) => /^\d+$/.test(key))) requeued = await outbox.redeliver({ seqs: which.map((key) => count(key, 'seq', Number.MAX_SAFE_INTEGER)) });
        else requeued = await outbox.redeliver({ ids: which });
        printJson({ requeued });
      });
    });

  events
    .command('purge')
    .description('delete dead events now, rather than after events.keepDeadDays')
    .requiredOption('--config <file>', 'the registry config')
    .requiredOption('--dead', 'every dead event (the only kind purge deletes)')
    .option('--endpoint <name>', 'only this endpoint')
    .action(async (options: { config: string; endpoint?: string }) => {
      await withOutbox(options.config, async (outbox) => {
        let purged = 0;
        let removed: number;
        do {
          removed = await outbox.purgeDead(options.endpoint, 1000);
          purged += removed;
        } while (removed > 0);
        printJson({ purged });
      });
    });
}

function describe(row: OutboxRow, withBody: boolean): Record<string, unknown> {
  return {
    seq: row.seq,
    id: row.id,
    endpoint: row.endpoint,
    type: row.type,
    repository: row.repository,
    state: row.state,
    attempts: row.attempts,
    queuedAt: new Date(row.createdAt).toISOString(),
    ...(row.state === 'pending' ? { nextAttemptAt: new Date(row.nextAt).toISOString() } : {}),
    ...(row.finishedAt === undefined ? {} : { finishedAt: new Date(row.finishedAt).toISOString() }),
    ...(row.lastError === undefined ? {} : { lastError: row.lastError }),
    ...(withBody ? { event: JSON.parse(row.body) as unknown } : {}),
  };
}

function count(text: string, what: string, max: number): number {
  const value = Number(text);
  if (!/^\d+$/.test(text) || value < 1 || value > max) throw new UsageError(`${what} must be a whole number from 1 to ${max}`);
  return value;
}

async function withOutbox(file: string, work: (outbox: EventOutbox) => Promise<void>): Promise<void> {
  const config = await readConfig(file, loadRegistryConfig);
  const db = await openDatabase(config.metadata);
  try {
    await work(new EventOutbox(db));
  } finally {
    await db.close();
  }
}
