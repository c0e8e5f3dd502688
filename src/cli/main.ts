import path from 'node:path';
import { parseArgs } from 'node:util';
import { createLogger } from '../core/logger.ts';
import { ConfigError, loadHoldConfig, parseHoldConfig } from '../hold/config.ts';
import { Hold } from '../hold/hold.ts';
import { ensureSigningKey } from './keys.ts';

const USAGE = `usage:
  holdfast start [--data DIR] [--port N]    embedded hold on 127.0.0.1 (filesystem backend)
  holdfast hold --config hold.yaml          run a hold service
  holdfast keygen --out DIR                 create a registry service-token key pair`;

const logger = createLogger({ base: { service: 'holdfast' } });

async function main(argv: string[]): Promise<void> {
  const [command, ...rest] = argv;
  const { values } = parseArgs({
    args: rest,
    options: { config: { type: 'string' }, data: { type: 'string' }, port: { type: 'string' }, out: { type: 'string' } },
    allowPositionals: false,
  });
  switch (command) {
    case 'hold': {
      if (!values.config) throw new UsageError('hold needs --config FILE');
      const config = await loadHoldConfig(values.config);
      const hold = await Hold.create(config, { logger, baseDir: path.dirname(values.config), defaultMetrics: true });
      await serve(hold);
      return;
    }
    case 'start': {
      const dataDir = path.resolve(values.data ?? 'data');
      const port = Number(values.port ?? process.env.PORT ?? 5000);
      const keys = await ensureSigningKey(path.join(dataDir, 'keys'));
      const config = parseHoldConfig({
        listen: { host: '127.0.0.1', port },
        identity: 'did:web:localhost',
        owner: 'did:web:localhost',
        trustedIssuers: [{ issuer: 'did:web:localhost', publicKey: keys.publicKey }],
        storage: { backend: 'fs', fs: { root: path.join(dataDir, 'hold') } },
      });
      const hold = await Hold.create(config, { logger, defaultMetrics: true });
      logger.warn('embedded mode: listening on loopback only, with a key pair generated under %s', path.join(dataDir, 'keys'));
      await serve(hold);
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

async function serve(hold: Hold): Promise<void> {
  const address = await hold.listen();
  logger.info({ address }, 'hold listening');
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'draining and shutting down');
    hold.close().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
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
