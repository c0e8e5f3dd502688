import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../core/logger.ts';
import { loadHoldConfig } from '../hold/config.ts';
import { ConfigError } from '../core/config.ts';
import { INSTANCE_NAME } from '../core/instance.ts';
import { hashPassword } from '../registry/auth/users.ts';
import { loadRegistryConfig } from '../registry/config.ts';
import { ensureSigningKey } from './keys.ts';

// Each command loads only what it runs: a registry process never holds the
// AWS SDK (only the hold talks to S3), which keeps its resident set smaller.
const loadHold = async () => (await import('../hold/hold.ts')).Hold;
const loadRegistry = async () => (await import('../registry/registry.ts')).Registry;

const USAGE = `usage:
  holdfast start [--data DIR] [--port N]    registry + hold on 127.0.0.1:5000 (filesystem, SQLite, no auth)
  holdfast registry --config registry.yaml  run a registry
  holdfast hold --config hold.yaml          run a hold service
  holdfast gc --config registry.yaml [--dry-run]   one garbage-collection pass now (JSON report)
  holdfast retention --config registry.yaml [--dry-run]   one retention pass now: each tag and manifest removed, and why (JSON)
  holdfast quota --config hold.yaml [--check [--fix]]   each DID's stored bytes and limit; --check recounts from the charges (JSON)
  holdfast keygen --out DIR                 create a registry service-token key pair
  holdfast hash-password                    read a password on stdin, print its bcrypt hash`;

const logger = createLogger({ base: { service: 'holdfast' } });
/** For the commands that print a report: stdout stays pure JSON. */
const reportLogger = () => createLogger({ base: { service: 'holdfast' } }, { toStderr: true });

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: {
      config: { type: 'string' },
      data: { type: 'string' },
      port: { type: 'string' },
      out: { type: 'string' },
      'dry-run': { type: 'boolean' },
      check: { type: 'boolean' },
      fix: { type: 'boolean' },
    },
    allowPositionals: false,
  });
  switch (command) {
    case 'hold': {
      if (!values.config) throw new UsageError('hold needs --config FILE');
      const config = await loadHoldConfig(values.config);
      const hold = await (await loadHold()).create(config, { logger, baseDir: path.dirname(values.config), defaultMetrics: true });
      const address = await hold.listen();
      logger.info({ address, instance: INSTANCE_NAME }, 'hold listening');
      onSignal(() => hold.close());
      return;
    }
    case 'registry': {
      if (!values.config) throw new UsageError('registry needs --config FILE');
      const registry = await (await loadRegistry()).create(await loadRegistryConfig(values.config), { logger, defaultMetrics: true });
      const address = await registry.listen();
      logger.info({ address, instance: INSTANCE_NAME }, 'registry listening');
      onSignal(() => registry.close());
      return;
    }
    case 'start': {
      const dataDir = path.resolve(values.data ?? 'data');
      const port = Number(values.port ?? process.env.PORT ?? 5000);
      const { startEmbedded } = await import('./embedded.ts');
      const embedded = await startEmbedded({ dataDir, port, logger });
      logger.info({ address: `http://127.0.0.1:${port}`, data: dataDir }, 'holdfast registry listening (embedded hold, filesystem backend, SQLite)');
      onSignal(() => embedded.close());
      return;
    }
    case 'gc': {
      if (!values.config) throw new UsageError('gc needs --config FILE (the registry config)');
      const registry = await (await loadRegistry()).create(await loadRegistryConfig(values.config), { logger: reportLogger() });
      try {
        if (!registry.gc) throw new UsageError('set gc.did in the registry config: the DID that may delete at the hold');
        console.log(JSON.stringify(await registry.gc.run({ dryRun: values['dry-run'] === true }), null, 2));
      } finally {
        await registry.close();
      }
      return;
    }
    case 'retention': {
      if (!values.config) throw new UsageError('retention needs --config FILE (the registry config)');
      const registry = await (await loadRegistry()).create(await loadRegistryConfig(values.config), { logger: reportLogger() });
      try {
        if (!registry.retention.configured) throw new UsageError('the registry config has no policies.retention rules (docs/POLICIES.md)');
        console.log(JSON.stringify(await registry.retention.run({ dryRun: values['dry-run'] === true, items: true }), null, 2));
      } finally {
        await registry.close();
      }
      return;
    }
    case 'quota': {
      if (!values.config) throw new UsageError('quota needs --config FILE (the hold config)');
      const hold = await (await loadHold()).create(await loadHoldConfig(values.config), { logger: reportLogger(), baseDir: path.dirname(values.config) });
      try {
        const quotas = hold.service.quotas;
        if (!quotas) throw new UsageError('the hold config has no quotas section (docs/POLICIES.md)');
        const report = values.check ? await quotas.check({ fix: values.fix === true }) : await quotas.list();
        console.log(JSON.stringify(report, null, 2));
      } finally {
        await hold.close();
      }
      return;
    }
    case 'hash-password': {
      const password = (await readStdin()).replace(/\r?\n$/, '');
      if (!password) throw new UsageError('hash-password reads the password on stdin');
      console.log(await hashPassword(password));
      return;
    }
    case 'keygen': {
      if (!values.out) throw new UsageError('keygen needs --out DIR');
      await ensureSigningKey(values.out);
      console.log(`key pair in ${values.out}: registry-signing.key (private), registry-signing.pub`);
      return;
    }
    default:
      throw new UsageError(command ? `unknown command ${command}` : 'no command given');
  }
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

async function readStdin(): Promise<string> {
  let text = '';
  for await (const chunk of process.stdin) text += (chunk as Buffer).toString();
  return text;
}

class UsageError extends Error {}

main(process.argv.slice(2)).catch((err: unknown) => {
  if (err instanceof UsageError) {
    console.error(`${err.message}\n${USAGE}`);
    process.exit(2);
  }
  if (err instanceof ConfigError) {
    console.error(err.message);
    process.exit(2);
  }
  logger.fatal({ err }, 'holdfast failed to start');
  process.exit(1);
});
