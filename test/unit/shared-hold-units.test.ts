import { expect } from 'chai';
import { parseDigest } from '../../src/core/digest.ts';
import { lifetimeProblem } from '../../src/hold/auth/tokens.ts';
import { digestFromDeletingKey, storageKey, uploadFromUploadKey } from '../../src/hold/keys.ts';

describe('shared-hold helpers', function () {
  const digest = parseDigest(`sha256:${'ab'.repeat(32)}`)!;

  it('builds the deletion lease key and reads its digest back, and nothing else', function () {
    const key = storageKey({ kind: 'blob-deleting', digest }, 'p/');
    expect(key).to.equal(`p/holdfast/deleting/sha256/${'ab'.repeat(32)}`);
    expect(digestFromDeletingKey(key, 'p/')?.value).to.equal(digest.value);
    for (const other of [`p/holdfast/deleting/sha256/${'ab'.repeat(31)}`, `p/holdfast/deleting/md5/${'ab'.repeat(32)}`, `q/holdfast/deleting/sha256/${'ab'.repeat(32)}`]) {
      expect(digestFromDeletingKey(other, 'p/'), other).to.equal(undefined);
    }
  });

  it('finds the upload any key under an upload directory belongs to', function () {
    const uuid = '0f8e7d6c-5b4a-4938-8271-605f4e3d2c1b';
    expect(uploadFromUploadKey(`holdfast/uploads/${uuid}/staged/00000000000000000010`)?.uuid).to.equal(uuid);
    expect(uploadFromUploadKey(`holdfast/uploads/${uuid}/session.json`)?.uuid).to.equal(uuid);
    expect(uploadFromUploadKey('holdfast/uploads/not-a-uuid/staged/1')).to.equal(undefined);
    expect(uploadFromUploadKey(`holdfast/objects/${uuid}`)).to.equal(undefined);
  });

  it('checks a token lifetime against the clock', function () {
    const limits = { now: 1_000_000, maxLifetimeSeconds: 300, clockToleranceSeconds: 5 };
    const cases: [number, number, RegExp | undefined][] = [
      [1_000_000, 1_000_300, undefined],
      [1_000_004, 1_000_120, undefined],
      [1_000_000 + 365 * 86_400, 1_000_300 + 365 * 86_400, /issued in the future/],
      [1_000_006, 1_000_100, /issued in the future/],
      [1_000_000, 1_000_301, /lifetime 301s/],
      [1_000_003, 1_000_303, /expires 303s from now/],
    ];
    for (const [iat, exp, expected] of cases) {
      const problem = lifetimeProblem(iat, exp, limits);
      if (expected) expect(problem, `${iat} ${exp}`).to.match(expected);
      else expect(problem, `${iat} ${exp}`).to.equal(undefined);
    }
  });
});
