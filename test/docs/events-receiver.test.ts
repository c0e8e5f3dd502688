import { expect } from 'chai';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { signDelivery } from '../../src/registry/events/signature.ts';

type Receive = (secret: string, headers: Record<string, string>, body: Buffer, handle: (event: unknown) => Promise<void>) => Promise<number>;

/** The receiver example in docs/EVENTS.md, run as written against what the registry signs. */
describe('docs/EVENTS.md: the receiver example', function () {
  let dir: string;
  let receive: Receive;
  const secret = 'a-receiver-secret-of-at-least-32-characters';

  before(async function () {
    const doc = await readFile(new URL('../../docs/EVENTS.md', import.meta.url), 'utf8');
    const example = /```js\n([\s\S]*?)```/.exec(doc)?.[1];
    if (!example) throw new Error('docs/EVENTS.md has no js example');
    dir = await mkdtemp(path.join(os.tmpdir(), 'holdfast-receiver-'));
    const file = path.join(dir, 'receiver.mjs');
    await writeFile(file, example);
    ({ receive } = (await import(pathToFileURL(file).href)) as { receive: Receive });
  });
  after(async function () {
    await rm(dir, { recursive: true, force: true });
  });

  const delivery = (id: string, body: string, timestamp = Math.floor(Date.now() / 1000)) => ({
    headers: { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signDelivery(secret, id, timestamp, body) },
    body: Buffer.from(body),
  });

  it('accepts a signed delivery once, absorbs its repeat, and refuses a forgery or an old replay', async function () {
    const handled: unknown[] = [];
    const handle = async (event: unknown) => void handled.push(event);
    const body = JSON.stringify({ specversion: '1.0', id: 'e1', type: 'dev.holdfast.manifest.pushed', data: { repository: 'alice/app', note: 'é' } });
    const first = delivery('e1', body);
    expect(await receive(secret, first.headers, first.body, handle)).to.equal(204);
    expect(await receive(secret, delivery('e1', body).headers, first.body, handle)).to.equal(204);
    expect(handled).to.have.length(1);
    expect(await receive(secret, first.headers, Buffer.from(body.replace('alice', 'mallory')), handle)).to.equal(401);
    expect(await receive('another-secret-of-at-least-32-characters!!', first.headers, first.body, handle)).to.equal(401);
    const old = delivery('e2', body, Math.floor(Date.now() / 1000) - 600);
    expect(await receive(secret, old.headers, old.body, handle)).to.equal(401);
    // A handler that fails leaves the id unmarked, so the retry is handled.
    const failing = delivery('e3', body);
    let calls = 0;
    const flaky = async () => {
      calls++;
      if (calls === 1) throw new Error('down');
    };
    await receive(secret, failing.headers, failing.body, flaky).catch(() => undefined);
    expect(await receive(secret, failing.headers, failing.body, flaky)).to.equal(204);
    expect(calls).to.equal(2);
  });
});
