/**
 * A registry in its own process, for tests that SIGKILL it.
 * stdin: the registry config as JSON. stdout: one line `ready` once it listens.
 */
import pino from 'pino';
import { parseRegistryConfig } from '../../src/registry/config.ts';
import { Registry } from '../../src/registry/registry.ts';

const config = JSON.parse(await new Promise<string>((resolve) => {
  let text = '';
  process.stdin.on('data', (chunk: Buffer) => (text += chunk.toString()));
  process.stdin.on('end', () => resolve(text));
})) as unknown;

const registry = await Registry.create(parseRegistryConfig(config), { logger: pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }) });
await registry.listen();
process.stdout.write('ready\n');
