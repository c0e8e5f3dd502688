/**
 * A driver in its own process, for crash tests. It resumes (or creates) an
 * upload, writes pattern bytes up to `--durable`, closes (making them
 * durable), reports, then keeps writing until it is killed.
 *
 * stdin: JSON { config, did, seed, id?, durable, total }
 * stdout: one JSON line { id, size } once `durable` bytes are durable.
 */
import createHoldDriver from '../../src/driver/index.ts';
import { patternBytes } from './driver-harness.ts';

interface ChildInput {
  config: unknown;
  did: string;
  seed: string;
  id?: string;
  durable: number;
  total: number;
}

const input = JSON.parse(await new Promise<string>((resolve) => {
  let text = '';
  process.stdin.on('data', (chunk: Buffer) => (text += chunk.toString()));
  process.stdin.on('end', () => resolve(text));
})) as ChildInput;

const store = createHoldDriver(input.config).blobStore(input.did);
const writer = input.id ? await store.resume(input.id) : await store.create();
const chunk = 1024 * 1024;
while (writer.size < input.durable) {
  const length = Math.min(chunk, input.durable - writer.size);
  await writer.write(patternBytes(input.seed, writer.size, length));
}
await writer.close();
process.stdout.write(`${JSON.stringify({ id: writer.id, size: writer.size })}\n`);
// Keep writing (parts go out, nothing is recorded) until the parent kills us.
while (writer.size < input.total) {
  await writer.write(patternBytes(input.seed, writer.size, Math.min(chunk, input.total - writer.size)));
}
await new Promise(() => {});
