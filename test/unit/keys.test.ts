import { expect } from 'chai';
import { parseDigest } from '../../src/core/digest.ts';
import { normalizePrefix, parseBlobRef, storageKey, uploadFromSessionKey, type KeySpec } from '../../src/hold/keys.ts';
import { parseUploadName, uploadNameFromUuid } from '../../src/protocol/upload-names.ts';

const HEX = 'ab'.repeat(32);
const DIGEST = parseDigest(`sha256:${HEX}`)!;
const UPLOAD = uploadNameFromUuid('0a1b2c3d-0000-4000-8000-123456789abc');

describe('storage keys', function () {
  const table: [KeySpec, string, string][] = [
    [{ kind: 'blob', digest: DIGEST }, '', `docker/registry/v2/blobs/sha256/ab/${HEX}/data`],
    [{ kind: 'blob', digest: DIGEST }, 'tenant/', `tenant/docker/registry/v2/blobs/sha256/ab/${HEX}/data`],
    [{ kind: 'blob', digest: parseDigest(`sha512:${'cd'.repeat(64)}`)! }, '', `docker/registry/v2/blobs/sha512/cd/${'cd'.repeat(64)}/data`],
    [{ kind: 'upload-data', upload: UPLOAD }, 'p/', `p/holdfast/uploads/${UPLOAD.uuid}/data`],
    [{ kind: 'upload-session', upload: UPLOAD }, '', `holdfast/uploads/${UPLOAD.uuid}/session.json`],
    [{ kind: 'upload-staged', upload: UPLOAD, offset: 22 }, '', `holdfast/uploads/${UPLOAD.uuid}/staged/00000000000000000022`],
    [{ kind: 'uploads-root' }, 'p/', 'p/holdfast/uploads/'],
  ];
  for (const [spec, prefix, key] of table) {
    it(`${spec.kind} under "${prefix}" → ${key}`, function () {
      expect(storageKey(spec, prefix)).to.equal(key);
    });
  }

  it('sorts staged segments by offset as strings', function () {
    const keys = [5, 100, 22].map((offset) => storageKey({ kind: 'upload-staged', upload: UPLOAD, offset }));
    expect([...keys].sort()).to.deep.equal([5, 22, 100].map((offset) => storageKey({ kind: 'upload-staged', upload: UPLOAD, offset })));
  });

  it('refuses negative or fractional staged offsets', function () {
    expect(() => storageKey({ kind: 'upload-staged', upload: UPLOAD, offset: -1 })).to.throw(TypeError);
    expect(() => storageKey({ kind: 'upload-staged', upload: UPLOAD, offset: 1.5 })).to.throw(TypeError);
  });

  it('finds the upload of a session key and nothing else', function () {
    expect(uploadFromSessionKey(`p/holdfast/uploads/${UPLOAD.uuid}/session.json`, 'p/')?.value).to.equal(UPLOAD.value);
    expect(uploadFromSessionKey(`p/holdfast/uploads/${UPLOAD.uuid}/data`, 'p/')).to.equal(undefined);
    expect(uploadFromSessionKey(`holdfast/uploads/../x/session.json`)).to.equal(undefined);
  });

  it('normalizes prefixes and refuses dot segments', function () {
    expect(normalizePrefix(undefined)).to.equal('');
    expect(normalizePrefix('/a/b/')).to.equal('a/b/');
    expect(() => normalizePrefix('a/../b')).to.throw(TypeError);
  });

  const refs: [unknown, string | undefined][] = [
    [`sha256:${HEX}`, 'digest'],
    [UPLOAD.value, 'upload'],
    ['uploads/temp-../../x', undefined],
    [`uploads/temp-${UPLOAD.uuid}/../x`, undefined],
    [`uploads/temp-${UPLOAD.uuid.toUpperCase()}`, undefined],
    ['/etc/passwd', undefined],
    [`sha256:${HEX}\n`, undefined],
    [`SHA256:${HEX}`, undefined],
    [`sha384:${'a'.repeat(96)}`, undefined],
    [42, undefined],
    [undefined, undefined],
  ];
  for (const [input, kind] of refs) {
    it(`parses ${JSON.stringify(input)} as ${kind ?? 'invalid'}`, function () {
      expect(parseBlobRef(input)?.kind).to.equal(kind);
    });
  }

  it('round-trips upload names', function () {
    expect(parseUploadName(UPLOAD.value)).to.deep.equal(UPLOAD);
  });
});
