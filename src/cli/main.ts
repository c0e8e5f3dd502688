import path from 'node:path';
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { createLogger } from '../core/logger.ts';
import { loadHoldConfig } from '../hold/config.ts';
import type { Hold } from '../hold/hold.ts';
import { ConfigError } from '../core/config.ts';
import { INSTANCE_NAME } from '../core/instance.ts';
import { hashPassword } from '../registry/auth/users.ts';
import { loadRegistryConfig } from '../registry/config.ts';
import type { Registry } from '../registry/registry.ts';
import { ensureSigningKey } from './keys.ts';
import { UsageError } from './usage-error.ts';
import { printJson, readConfig, readStdin } from './io.ts';
import { registerAccessCommands, registerAccountCommands } from './accounts.ts';
import { registerEventCommands } from './events.ts';

// Each command loads only what it runs: a registry process never holds the
// AWS SDK (only the hold talks to S3), which keeps its resident set smaller.
const loadHold = async () => (await import('../hold/hold.ts')).Hold;
const loadRegistry = async () => (await import('../registry/registry.ts')).Registry;

const logger = createLogger({ base: { service: 'holdfast' } });
/** For the commands that print a report: stdout stays pure JSON. */
const reportLogger = () => createLogger({ base: { service: 'holdfast' } }, { toStderr: true });

/** A report command on the registry: opened from its config (no listener), `work`'s answer printed as JSON, closed after. */
async function reportFromRegistry(file: string, work: (registry: Registry) => Promise<unknown>): Promise<void> {
  const registry = await (await loadRegistry()).create(await readConfig(file, loadRegistryConfig), { logger: reportLogger() });
  try {
    printJson(await work(registry));
  } finally {
    await registry.close();
  }
}

/** The same on a hold. */
async function reportFromHold(file: string, work: (hold: Hold) => Promise<unknown>): Promise<void> {
  const hold = await (await loadHold()).create(await readConfig(file, loadHoldConfig), { logger: reportLogger(), baseDir: path.dirname(file) });
  try {
    printJson(await work(hold));
  } finally {
    await hold.close();
  }
}

function program(): Command {
  const cli = new Command('holdfast')
    .description('An OCI registry whose blobs live in S3 buckets owned by hold services.')
    .version(packageVersion(), '-V, --version')
    .showHelpAfterError('(add --help for usage)');

  cli
    .command('start')
    .description('registry + hold on 127.0.0.1:5000 in one process (filesystem, SQLite, no authentication)')
    .option('--data <dir>', 'where blobs, the database and keys live', 'data')
    .option('--port <n>', 'the registry port (default: $PORT, else 5000)')
    .action(async (options: { data: string; port?: string }) => {
      const dataDir = path.resolve(options.data);
      const port = portNumber(options.port ?? process.env.PORT ?? '5000');
      const { startEmbedded } = await import('./embedded.ts');
      const embedded = await startEmbedded({ dataDir, port, logger });
      logger.info({ address: `http://127.0.0.1:${port}`, data: dataDir }, 'holdfast registry listening (embedded hold, filesystem backend, SQLite)');
      onSignal(() => embedded.close());
    });

  cli
    .command('registry')
    .description('run a registry')
    .requiredOption('--config <file>', 'the registry config (docs/CONFIG.md)')
    .action(async (options: { config: string }) => {
      const registry = await (await loadRegistry()).create(await readConfig(options.config, loadRegistryConfig), { logger, defaultMetrics: true });
      const address = await registry.listen();
      logger.info({ address, instance: INSTANCE_NAME }, 'registry listening');
      onSignal(() => registry.close());
    });

  cli
    .command('hold')
    .description('run a hold service')
    .requiredOption('--config <file>', 'the hold config (docs/CONFIG.md)')
    .action(async (options: { config: string }) => {
      const config = await readConfig(options.config, loadHoldConfig);
      const hold = await (await loadHold()).create(config, { logger, baseDir: path.dirname(options.config), defaultMetrics: true });
      const address = await hold.listen();
      logger.info({ address, instance: INSTANCE_NAME }, 'hold listening');
      onSignal(() => hold.close());
    });

  cli
    .command('gc')
    .description('one garbage-collection pass now (JSON report)')
    .requiredOption('--config <file>', 'the registry config')
    .option('--dry-run', 'report what the pass would delete, and delete nothing')
    .action((options: { config: string; dryRun?: boolean }) =>
      reportFromRegistry(options.config, (registry) => {
        if (!registry.gc) throw new UsageError('set gc.did in the registry config: the DID that may delete at the hold');
        return registry.gc.run({ dryRun: options.dryRun === true });
      }),
    );

  cli
    .command('recount')
    .description('check the totals the registry keeps (tags per repository, stored bytes per DID) against its rows (JSON)')
    .requiredOption('--config <file>', 'the registry config')
    .option('--fix', 'write the counted totals where they differ')
    .action((options: { config: string; fix?: boolean }) => reportFromRegistry(options.config, (registry) => registry.metadata.recount({ fix: options.fix === true })));

  cli
    .command('retention')
    .description('one retention pass now: each tag and manifest removed, and why (JSON)')
    .requiredOption('--config <file>', 'the registry config')
    .option('--dry-run', 'report what the pass would remove, and remove nothing')
    .action((options: { config: string; dryRun?: boolean }) =>
      reportFromRegistry(options.config, (registry) => {
        if (!registry.retention.configured) throw new UsageError('the registry config has no policies.retention rules (docs/POLICIES.md)');
        return registry.retention.run({ dryRun: options.dryRun === true, items: true });
      }),
    );

  cli
    .command('quota')
    .description("each DID's stored bytes and limit (JSON)")
    .requiredOption('--config <file>', 'the hold config')
    .option('--check', 'recount every total from the charges')
    .option('--fix', 'with --check: write the recounted totals')
    .action(async (options: { config: string; check?: boolean; fix?: boolean }) => {
      if (options.fix && !options.check) throw new UsageError('--fix goes with --check');
      await reportFromHold(options.config, (hold) => {
        const quotas = hold.service.quotas;
        if (!quotas) throw new UsageError('the hold config has no quotas section (docs/POLICIES.md)');
        return options.check ? quotas.check({ fix: options.fix === true }) : quotas.list();
      });
    });

  cli
    .command('hold-janitor')
    .description("one pass of the hold's janitor now: idle uploads, orphaned writes, abandoned deletions (JSON)")
    .requiredOption('--config <file>', 'the hold config')
    .action((options: { config: string }) =>
      reportFromHold(options.config, async (hold) => {
        const started = performance.now();
        const result = await hold.runJanitor();
        return { ...result, seconds: (performance.now() - started) / 1000 };
      }),
    );

  cli
    .command('keygen')
    .description('create a registry service-token key pair')
    .requiredOption('--out <dir>', 'where to write registry-signing.key and registry-signing.pub')
    .action(async (options: { out: string }) => {
      await ensureSigningKey(options.out);
      console.log(`key pair in ${options.out}: registry-signing.key (private), registry-signing.pub`);
    });

  cli
    .command('hash-password')
    .description('read a password on stdin, print its bcrypt hash (for users.yaml)')
    .action(async () => {
      const password = (await readStdin()).replace(/\r?\n$/, '');
      if (!password) throw new UsageError('hash-password reads the password on stdin');
      console.log(await hashPassword(password));
    });

  registerAccountCommands(cli);
  registerAccessCommands(cli);
  registerEventCommands(cli);
  return cli;
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

function portNumber(text: string): number {
  const port = Number(text);
  if (!/^\d+$/.test(text) || port > 65535) throw new UsageError(`not a port number: ${text}`);
  return port;
}

/**
 * Drains and exits on SIGINT or SIGTERM; a repeat while draining is ignored
 * (a supervisor may signal every process of a service, and bin/holdfast.js
 * passes its own on). Also drains when the bin/holdfast.js that started this
 * process is gone (its IPC channel closes), so no orphan keeps serving.
 */
function onSignal(close: () => Promise<void>): void {
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining and shutting down');
    close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', () => stop('SIGINT'));
  process.on('SIGTERM', () => stop('SIGTERM'));
  if (process.connected) {
    process.on('disconnect', () => stop('parent exited'));
    process.channel?.unref();
  }
}

program()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    if (err instanceof UsageError || err instanceof ConfigError) {
      console.error(`holdfast: ${err.message}`);
      process.exit(2);
    }
    // A file the config names (users, keys) that is not there.
    const { code, path: missing } = err as NodeJS.ErrnoException;
    if ((code === 'ENOENT' || code === 'EACCES') && missing) {
      console.error(`holdfast: ${code === 'ENOENT' ? 'file not found' : 'file not readable'}: ${missing}`);
      process.exit(2);
    }
    logger.fatal({ err }, 'holdfast failed');
    process.exit(1);
  });
