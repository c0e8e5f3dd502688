import path from 'node:path';
import type { Logger } from 'pino';
import createHoldDriver from '../driver/index.ts';
import { parseHoldConfig } from '../hold/config.ts';
import { Hold } from '../hold/hold.ts';
import { parseRegistryConfig } from '../registry/config.ts';
import { Registry } from '../registry/registry.ts';
import { freePort } from '../core/net.ts';
import { ensureSigningKey } from './keys.ts';

const LOCAL_DID = 'did:web:localhost';

/**
 * `holdfast start`: a hold (filesystem backend) and a registry in one process.
 * The hold listens on an ephemeral loopback port; the registry on
 * 127.0.0.1:<port> streams blobs itself, so clients only need that one port.
 */
export async function startEmbedded(options: { dataDir: string; port: number; host?: string; logger: Logger }): Promise<{ registry: Registry; hold: Hold; close(): Promise<void> }> {
  const keys = await ensureSigningKey(path.join(options.dataDir, 'keys'));
  const holdPort = await freePort();
  const holdAddress = `http://127.0.0.1:${holdPort}`;
  const hold = await Hold.create(
    parseHoldConfig({
      listen: { host: '127.0.0.1', port: holdPort },
      publicUrl: holdAddress,
      identity: 'did:web:hold.localhost',
      owner: LOCAL_DID,
      trustedIssuers: [{ issuer: 'did:web:registry.localhost', publicKey: keys.publicKey }],
      storage: { backend: 'fs', fs: { root: path.join(options.dataDir, 'hold') } },
    }),
    { logger: options.logger, defaultMetrics: true },
  );
  await hold.listen();
  const storage = createHoldDriver({
    hold: { url: holdAddress, audience: 'did:web:hold.localhost' },
    issuer: 'did:web:registry.localhost',
    privateKey: keys.privateKey,
    provider: 'minio',
    // One DID acts for every request here: its share is the whole budget.
    memoryPerDid: 512 * 1024 * 1024,
  });
  const registry = await Registry.create(
    parseRegistryConfig({
      listen: { host: options.host ?? '127.0.0.1', port: options.port },
      storage: { module: 'hold' },
      blobs: { delivery: 'proxy' },
      metadata: { kind: 'sqlite', path: path.join(options.dataDir, 'registry.db') },
      auth: { mode: 'none', did: LOCAL_DID },
      gc: { did: LOCAL_DID },
    }),
    { logger: options.logger, storage, defaultMetrics: true },
  );
  await registry.listen();
  return {
    registry,
    hold,
    async close() {
      await registry.close();
      await hold.close();
    },
  };
}
