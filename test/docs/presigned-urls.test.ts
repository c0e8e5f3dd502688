import { expect } from 'chai';
import { readFile } from 'node:fs/promises';
import { ListMultipartUploadsCommand, type LifecycleRule, type MultipartUpload } from '@aws-sdk/client-s3';
import { normalizePrefix, storageKey } from '../../src/hold/keys.ts';
import { uploadNameFromUuid } from '../../src/protocol/upload-names.ts';
import { sharedMinio } from '../support/global-fixtures.ts';
import { DIDS, startTestHold, type TestHold } from '../support/hold-harness.ts';

/** The bucket lifecycle rule docs/PRESIGNED_URLS.md tells operators to set. */
async function documentedRule(): Promise<LifecycleRule> {
  const doc = await readFile(new URL('../../docs/PRESIGNED_URLS.md', import.meta.url), 'utf8');
  const blocks = [...doc.matchAll(/```json\n([\s\S]*?)```/g)].map((match) => match[1] as string).filter((block) => block.includes('AbortIncompleteMultipartUpload'));
  expect(blocks, 'one lifecycle rule in the doc').to.have.length(1);
  const { Rules } = JSON.parse(blocks[0] as string) as { Rules: LifecycleRule[] };
  expect(Rules).to.have.length(1);
  return Rules[0] as LifecycleRule;
}

/** Where the hold puts a multipart upload's target, under `prefix`, up to the upload's own name. */
function multipartRoot(prefix: string): string {
  const uuid = '00000000-0000-4000-8000-000000000000';
  const key = storageKey({ kind: 'upload-object', upload: uploadNameFromUuid(uuid) }, normalizePrefix(prefix));
  expect(key.endsWith(uuid)).to.equal(true);
  return key.slice(0, -uuid.length);
}

describe('docs: the bucket lifecycle rule in PRESIGNED_URLS.md', function () {
  this.timeout(60_000);
  let hold: TestHold | undefined;

  after(async function () {
    await hold?.close();
  });

  it('filters on the prefix keys.ts gives multipart uploads, and only aborts them', async function () {
    const rule = await documentedRule();
    expect(rule.Status).to.equal('Enabled');
    expect(rule.Filter?.Prefix).to.equal(multipartRoot(''));
    expect(rule.AbortIncompleteMultipartUpload?.DaysAfterInitiation).to.be.a('number');
    // Committed blobs published by reference keep their bytes under the same prefix.
    expect(rule.Expiration, 'no Expiration: it would delete published blobs').to.equal(undefined);
  });

  // MinIO refuses AbortIncompleteMultipartUpload in a lifecycle configuration
  // (it is not implemented there), so the rule cannot be applied to it; what
  // can be checked is that a real abandoned upload lies under the rule's filter.
  it('covers the multipart upload a hold with a configured prefix leaves behind in MinIO', async function () {
    const minio = await sharedMinio();
    hold = await startTestHold('s3');
    const documented = await documentedRule();
    // The doc: the filter is `holdfast/objects/` under `storage.s3.prefix`.
    const filter = `${hold.prefix}${documented.Filter?.Prefix ?? ''}`;
    expect(filter).to.equal(multipartRoot(hold.prefix));

    const started = await hold.client.startMultipart(DIDS.owner);
    let pending: MultipartUpload | undefined;
    let keyMarker: string | undefined;
    let uploadIdMarker: string | undefined;
    do {
      const page = await minio.client.send(new ListMultipartUploadsCommand({ Bucket: minio.bucket, KeyMarker: keyMarker, UploadIdMarker: uploadIdMarker }));
      pending = (page.Uploads ?? []).find((upload) => upload.UploadId === started.upload_id);
      keyMarker = page.IsTruncated ? page.NextKeyMarker : undefined;
      uploadIdMarker = page.IsTruncated ? page.NextUploadIdMarker : undefined;
    } while (!pending && keyMarker);
    expect(pending, 'the abandoned upload is pending in MinIO').to.not.equal(undefined);
    expect(pending?.Key?.startsWith(filter), `${pending?.Key} is under ${filter}`).to.equal(true);
    await hold.client.abortMultipart(DIDS.owner, started.upload_name, started.upload_id);
  });
});
