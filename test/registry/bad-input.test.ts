import { expect } from 'chai';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { sha256 } from '../support/bytes.ts';
import { startTestRegistry, type TestRegistry } from '../support/registry-harness.ts';
import { BAD_INPUT_CASES } from './bad-input.cases.ts';


describe('registry bad input', function () {
  let registry: TestRegistry;
  let token: string;
  const uploads = new Map<string, string>();
  let blob: string;
  const missing = sha256(randomBytes(8));

  before(async function () {
    registry = await startTestRegistry({ backend: 's3' });
    token = await registry.token('alice', 'repository:alice/app:pull,push repository:alice/other:pull,push');
    const config = Buffer.from('{}');
    const post = await request(`${registry.url}/v2/alice/app/blobs/uploads/?digest=${sha256(config)}`, { method: 'POST', body: config, headers: { authorization: `Bearer ${token}` } });
    await post.body.dump();
    expect(post.statusCode).to.equal(201);
    blob = sha256(config);
    for (const repo of ['alice/app', 'alice/other']) {
      const started = await request(`${registry.url}/v2/${repo}/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
      await started.body.dump();
      uploads.set(repo, started.headers.location as string);
    }
    const patched = await request(`${registry.url}${uploads.get('alice/app')}`, { method: 'PATCH', body: 'abcde', headers: { authorization: `Bearer ${token}`, 'content-range': '0-4' } });
    await patched.body.dump();
    expect(patched.statusCode).to.equal(202);
  });
  after(async function () {
    await registry?.close();
  });

  async function snapshot() {
    const tags = await request(`${registry.url}/v2/alice/app/tags/list`, { headers: { authorization: `Bearer ${token}` } });
    const status = await request(`${registry.url}${uploads.get('alice/app')}`, { headers: { authorization: `Bearer ${token}` } });
    await status.body.dump();
    return { tags: await tags.body.text(), keys: await registry.hold.inspect.keys(), uploadRange: status.headers.range };
  }

  it(`has at least 60 cases (${BAD_INPUT_CASES.length})`, function () {
    expect(BAD_INPUT_CASES.length).to.be.at.least(60);
  });

  for (const badCase of BAD_INPUT_CASES) {
    it(`${badCase.name} → ${badCase.status}${badCase.code ? ` ${badCase.code}` : ''}`, async function () {
      const before = await snapshot();
      let fresh = '';
      if (badCase.path.includes('{fresh}')) {
        const started = await request(`${registry.url}/v2/alice/app/blobs/uploads/`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
        await started.body.dump();
        fresh = started.headers.location as string;
      }
      const fill = (text: string) =>
        text
          .replace('{fresh}', fresh)
          .replace(/\{upload:([^}]+)\}/g, (_match, repo: string) => (uploads.get(repo) as string).replace(repo, 'alice/app'))
          .replace('{upload}', uploads.get('alice/app') as string)
          .replace(/\{blob\}/g, blob)
          .replace(/\{missing\}/g, missing);
      const response = await request(`${registry.url}${fill(badCase.path)}`, {
        method: badCase.method,
        headers: { authorization: `Bearer ${token}`, ...badCase.headers },
        body: badCase.body === undefined ? undefined : fill(badCase.body),
      });
      const text = await response.body.text();
      expect(response.statusCode, text).to.equal(badCase.status);
      if (badCase.code && badCase.method !== 'HEAD') expect((JSON.parse(text) as { errors: { code: string }[] }).errors[0]?.code).to.equal(badCase.code);
      expect(await snapshot()).to.deep.equal(before);
    });
  }
});
