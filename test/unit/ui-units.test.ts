import { expect } from 'chai';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { Html, html, href } from '../../src/registry/ui/html.ts';
import { ImageConfigs } from '../../src/registry/ui/image-config.ts';
import { safeNext } from '../../src/registry/ui/routes.ts';
import type { StorageDriver } from '../../src/registry/http/context.ts';

const CONFIG_TYPE = 'application/vnd.oci.image.config.v1+json';

/** A storage that serves fixed bytes for any digest and counts its reads. */
function countingStorage(bytes: Buffer): StorageDriver & { reads: number } {
  const storage = {
    reads: 0,
    blobStore: () => ({ open: async () => { storage.reads++; return Readable.from([bytes]); } }),
    close: async () => {},
  };
  return storage as unknown as StorageDriver & { reads: number };
}

describe('web pages: units', function () {
  it('escapes every value and has no way to make raw markup outside the template', function () {
    const hostile = `<script>alert("x")</script>' onmouseover='y' \``;
    const rendered = html`<p title="${hostile}">${hostile}${[hostile, 1, null, false]}</p>`.toString();
    expect(rendered).to.not.contain('<script>').and.not.contain(`'y'`).and.not.contain('`');
    expect(() => new Html('<b>', Symbol('html'))).to.throw(TypeError);
  });

  it('builds links only under /ui/, each segment encoded', function () {
    expect(href(['r', 'alice/app', '-', 'manifests', 'sha256:ab'], { q: 'a b' })).to.equal('/ui/r/alice/app/-/manifests/sha256%3Aab?q=a+b');
    expect(href(['r', 'javascript:alert(1)'])).to.equal('/ui/r/javascript%3Aalert(1)');
  });

  it('sends a login only to a path of the pages', function () {
    for (const next of ['//evil.example', 'https://evil.example/ui/', '/\\\\evil.example', '/ui//evil.example', '/ui/\\t/evil', 'ui/', '']) expect(safeNext(next), next).to.equal('/ui/');
    expect(safeNext('/ui/r/alice/app?sort=pushed')).to.equal('/ui/r/alice/app?sort=pushed');
  });

  it('reads a config that is not JSON once, not on every view', async function () {
    const bytes = Buffer.from('not json at all');
    const storage = countingStorage(bytes);
    const configs = new ImageConfigs(storage);
    const descriptor = { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, mediaType: CONFIG_TYPE };
    for (let i = 0; i < 5; i++) expect(await configs.read('did:web:x', descriptor)).to.deep.equal({ unavailable: 'the config is not JSON' });
    expect(storage.reads).to.equal(1);
  });

  it('believes a config only when it hashes to its digest, and shares one read among viewers', async function () {
    const bytes = Buffer.from(JSON.stringify({ os: 'linux', architecture: 'arm64', config: { Labels: { a: 'b' } } }));
    const storage = countingStorage(bytes);
    const configs = new ImageConfigs(storage);
    const good = { digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length, mediaType: CONFIG_TYPE };
    const results = await Promise.all([configs.read('did:web:a', good), configs.read('did:web:b', good)]);
    expect(results[0]).to.deep.equal(results[1]);
    expect(results[0]).to.have.nested.property('config.architecture', 'arm64');
    expect(storage.reads).to.equal(1);
    const lying = { ...good, digest: `sha256:${'0'.repeat(64)}` };
    expect(await configs.read('did:web:a', lying)).to.deep.equal({ unavailable: 'the stored config does not hash to its digest' });
  });
});
