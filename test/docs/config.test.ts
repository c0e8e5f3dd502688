import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { configReference } from '../../src/cli/config-reference.ts';

describe('docs/CONFIG.md', function () {
  it('is what the config schemas generate: every key with its type, default and meaning (`npm run docs:config` writes it)', async function () {
    const doc = await readFile(new URL('../../docs/CONFIG.md', import.meta.url), 'utf8');
    expect(doc === configReference(), 'docs/CONFIG.md is out of date: run npm run docs:config').to.equal(true);
  });

  it('cannot be generated while a key has no description, and names the key', function () {
    const schema = z.object({ limits: z.object({ described: z.number().default(1).describe('Has one.'), bare: z.number().default(2) }) });
    expect(() => configReference([{ title: 'x', intro: 'y', schema }])).to.throw(/config key limits\.bare has no description/);
  });

  it('lists a key of each kind: a nested default, a union variant, a list item, an environment override', function () {
    const doc = configReference();
    expect(doc).to.include('| `limits.uploadLeaseSeconds` | integer, 1 to 600 | `15` |');
    expect(doc).to.include('| `storage.s3.bucket` | string, 3+ characters, at most 63 | required | With backend: `"s3"`. The bucket blobs and uploads live in. Environment: `HOLDFAST_S3_BUCKET`. |');
    expect(doc).to.include('| `crew[].access` | `"read"` or `"write"` | required |');
    expect(doc).to.include('| `partSize` | integer, 5242880 (5 MiB) to 67108864 (64 MiB) | optional |');
  });
});
