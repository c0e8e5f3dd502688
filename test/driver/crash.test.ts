import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { BACKENDS, DIDS } from '../support/hold-harness.ts';
import { MiB } from '../support/bytes.ts';
import { patternBytes, readAll, startDriverFixture, type DriverFixture } from '../support/driver-harness.ts';

const CHILD = fileURLToPath(new URL('../support/driver-child.ts', import.meta.url));

/** Runs the child until it reports durable bytes, then SIGKILLs it mid-write. */
async function writeThenKill(input: object): Promise<{ id: string; size: number }> {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD], { stdio: ['pipe', 'pipe', 'inherit'] });
  child.stdin.end(JSON.stringify(input));
  const report = await new Promise<string>((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error('child did not report within 60 s')), 60_000);
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString();
      if (text.includes('\n')) {
        clearTimeout(timer);
        resolve(text.split('\n')[0] as string);
      }
    });
    child.on('exit', (code) => reject(new Error(`child exited early with ${code}`)));
  });
  await new Promise((resolve) => setTimeout(resolve, 150));
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGKILL');
  await exited;
  return JSON.parse(report) as { id: string; size: number };
}

for (const backend of BACKENDS) {
  describe(`storage driver crash survival (${backend})`, function () {
    let fixture: DriverFixture;

    before(async function () {
      fixture = await startDriverFixture(backend);
    });
    after(async function () {
      await fixture?.close();
    });

    it('keeps every closed byte when the writing process is killed, and finishes in a new one', async function () {
      const seed = `crash-${backend}-${Date.now()}`;
      const total = 23 * MiB + 11;
      const config = fixture.config();
      const first = await writeThenKill({ config, did: DIDS.owner, seed, durable: 7 * MiB + 3, total });
      expect(first.size).to.equal(7 * MiB + 3);
      const second = await writeThenKill({ config, did: DIDS.owner, seed, id: first.id, durable: 15 * MiB + 1, total });
      expect(second.size).to.equal(15 * MiB + 1);

      const store = fixture.driver().blobStore(DIDS.owner);
      const writer = await store.resume(first.id);
      expect(writer.size, 'the resumed offset counts durable bytes only').to.equal(15 * MiB + 1);
      await writer.write(patternBytes(seed, writer.size, total - writer.size));
      const digest = `sha256:${createHash('sha256').update(patternBytes(seed, 0, total)).digest('hex')}`;
      await writer.commit({ digest, size: total });
      const read = await readAll(await store.open(digest));
      expect(read.equals(patternBytes(seed, 0, total))).to.equal(true);
      expect(await fixture.hold.inspect.pendingMultipartUploads()).to.equal(0);
    });
  });
}
