import { expect } from 'chai';
import { request } from 'undici';
import { AUDIENCE, BACKENDS, DIDS, startTestHold, type TestHold } from '../support/hold-harness.ts';
import { MiB, putToUrl, randomBlob } from '../support/bytes.ts';

interface Upload {
  name: string;
  id: string;
  etag: string;
}

interface BadCase {
  name: string;
  path: string;
  /** An object (with `did` added) or a raw string body. */
  body: (upload: Upload) => Record<string, unknown> | string;
  status: number;
  code: string;
  contentType?: string;
}

const DIGEST = `sha256:${'a'.repeat(64)}`;
const TRAVERSALS = ['../', '../../etc/passwd', 'uploads/temp-../../x', '/etc/passwd', 'uploads/temp-', 'sha256:../../x', `sha256:${'A'.repeat(64)}`, `sha256:${'a'.repeat(63)}`, `md5:${'a'.repeat(32)}`, `sha512:${'a'.repeat(64)}`];

const CASES: readonly BadCase[] = [
  ...TRAVERSALS.flatMap((digest): BadCase[] => [
    { name: `get-presigned-url digest ${JSON.stringify(digest)}`, path: '/get-presigned-url', body: () => ({ digest }), status: 400, code: 'DIGEST_INVALID' },
    { name: `put-presigned-url digest ${JSON.stringify(digest)}`, path: '/put-presigned-url', body: () => ({ digest }), status: 400, code: 'DIGEST_INVALID' },
    { name: `part-presigned-url digest ${JSON.stringify(digest)}`, path: '/part-presigned-url', body: (u) => ({ digest, upload_id: u.id, part_number: 1 }), status: 400, code: 'DIGEST_INVALID' },
    { name: `move to ${JSON.stringify(digest)}`, path: '/move', body: (u) => ({ from: u.name, to: digest }), status: 400, code: 'DIGEST_INVALID' },
    { name: `move from ${JSON.stringify(digest)}`, path: '/move', body: () => ({ from: digest, to: DIGEST }), status: 400, code: 'DIGEST_INVALID' },
  ]),
  { name: 'start-multipart for an upload name', path: '/start-multipart', body: (u) => ({ digest: u.name }), status: 400, code: 'DIGEST_INVALID' },
  { name: 'move to an upload name', path: '/move', body: (u) => ({ from: u.name, to: u.name }), status: 400, code: 'DIGEST_INVALID' },
  { name: 'stat of an upload name', path: '/stat', body: (u) => ({ digest: u.name }), status: 400, code: 'DIGEST_INVALID' },
  { name: 'part_number 0', path: '/part-presigned-url', body: (u) => ({ digest: u.name, upload_id: u.id, part_number: 0 }), status: 400, code: 'PART_NUMBER_INVALID' },
  { name: 'part_number 10001', path: '/part-presigned-url', body: (u) => ({ digest: u.name, upload_id: u.id, part_number: 10001 }), status: 400, code: 'PART_NUMBER_INVALID' },
  { name: 'part_number 1.5', path: '/part-presigned-url', body: (u) => ({ digest: u.name, upload_id: u.id, part_number: 1.5 }), status: 400, code: 'PART_NUMBER_INVALID' },
  { name: 'part_number as a string', path: '/part-presigned-url', body: (u) => ({ digest: u.name, upload_id: u.id, part_number: '1' }), status: 400, code: 'INVALID_REQUEST' },
  { name: 'an empty parts list', path: '/complete-multipart', body: (u) => ({ digest: u.name, upload_id: u.id, parts: [] }), status: 400, code: 'INVALID_REQUEST' },
  { name: 'a wrong ETag', path: '/complete-multipart', body: (u) => ({ digest: u.name, upload_id: u.id, parts: [{ part_number: 1, etag: '"0123456789abcdef0123456789abcdef"' }] }), status: 400, code: 'INVALID_PART' },
  { name: 'a part never uploaded', path: '/complete-multipart', body: (u) => ({ digest: u.name, upload_id: u.id, parts: [{ part_number: 2, etag: u.etag }] }), status: 400, code: 'INVALID_PART' },
  { name: 'parts out of order', path: '/complete-multipart', body: (u) => ({ digest: u.name, upload_id: u.id, parts: [{ part_number: 2, etag: u.etag }, { part_number: 1, etag: u.etag }] }), status: 400, code: 'INVALID_PART' },
  { name: 'an unknown upload id', path: '/part-presigned-url', body: (u) => ({ digest: u.name, upload_id: 'not-this-one', part_number: 1 }), status: 404, code: 'UPLOAD_UNKNOWN' },
  { name: 'an upload name never issued', path: '/abort-multipart', body: () => ({ digest: 'uploads/temp-00000000-0000-4000-8000-000000000000', upload_id: 'x' }), status: 404, code: 'UPLOAD_UNKNOWN' },
  { name: 'a move of an incomplete upload', path: '/move', body: (u) => ({ from: u.name, to: DIGEST }), status: 409, code: 'UPLOAD_NOT_COMPLETE' },
  { name: 'malformed JSON', path: '/start-multipart', body: () => '{"did": ', status: 400, code: 'INVALID_REQUEST' },
  { name: 'a JSON array body', path: '/stat', body: () => '[1,2]', status: 400, code: 'INVALID_REQUEST' },
  { name: 'a missing field', path: '/part-presigned-url', body: (u) => ({ digest: u.name, part_number: 1 }), status: 400, code: 'INVALID_REQUEST' },
  { name: 'an extra field', path: '/stat', body: () => ({ digest: DIGEST, bucket: 'other' }), status: 400, code: 'INVALID_REQUEST' },
  { name: 'a wrong-typed field', path: '/stat', body: () => ({ digest: 42 }), status: 400, code: 'INVALID_REQUEST' },
  { name: 'a text/plain body', path: '/stat', body: () => 'hello', status: 415, code: 'UNSUPPORTED_MEDIA_TYPE', contentType: 'text/plain' },
  { name: 'a negative staged offset', path: '/put-presigned-url', body: (u) => ({ digest: u.name, upload_id: u.id, offset: -1 }), status: 400, code: 'INVALID_REQUEST' },
  { name: 'progress with a part under 5 MiB', path: '/upload-progress', body: (u) => ({ digest: u.name, upload_id: u.id, base_size: 0, parts: [{ part_number: 1, etag: u.etag, size: 10 }] }), status: 400, code: 'PART_TOO_SMALL' },
  { name: 'progress that skips a part number', path: '/upload-progress', body: (u) => ({ digest: u.name, upload_id: u.id, base_size: 0, parts: [{ part_number: 2, etag: u.etag, size: 5 * MiB }] }), status: 400, code: 'INVALID_PART' },
  { name: 'progress naming a staged segment never uploaded', path: '/upload-progress', body: (u) => ({ digest: u.name, upload_id: u.id, base_size: 0, staged: [{ offset: 0, size: 7, segment_id: 'ab'.repeat(16) }] }), status: 400, code: 'SIZE_INVALID' },
  { name: 'progress naming a new staged segment without its segment_id', path: '/upload-progress', body: (u) => ({ digest: u.name, upload_id: u.id, base_size: 0, staged: [{ offset: 0, size: 7 }] }), status: 400, code: 'INVALID_REQUEST' },
  { name: 'a segment_id that is a path', path: '/upload-progress', body: (u) => ({ digest: u.name, upload_id: u.id, base_size: 0, staged: [{ offset: 0, size: 7, segment_id: '../../../session.json' }] }), status: 400, code: 'INVALID_REQUEST' },
  { name: 'a writer epoch that is not a count', path: '/upload-progress', body: (u) => ({ digest: u.name, upload_id: u.id, base_size: 0, staged: [], writer_epoch: -1 }), status: 400, code: 'INVALID_REQUEST' },
  { name: 'a staged segment read back that was never recorded', path: '/get-presigned-url', body: (u) => ({ digest: u.name, upload_id: u.id, offset: 0 }), status: 416, code: 'RANGE_INVALID' },
  { name: 'progress with a gap in staged segments', path: '/upload-progress', body: (u) => ({ digest: u.name, upload_id: u.id, base_size: 0, staged: [{ offset: 5, size: 7 }] }), status: 400, code: 'INVALID_REQUEST' },
  { name: 'progress from a stale size', path: '/upload-progress', body: (u) => ({ digest: u.name, upload_id: u.id, base_size: 99, staged: [] }), status: 409, code: 'UPLOAD_STATE_CONFLICT' },
];

for (const backend of BACKENDS) {
  describe(`hold bad input (${backend})`, function () {
    let hold: TestHold;
    let upload: Upload;
    let snapshot: { keys: string[]; pending: number };

    before(async function () {
      hold = await startTestHold(backend);
      const started = await hold.client.startMultipart(DIDS.owner);
      const part = await hold.client.partPresignedUrl(DIDS.owner, started.upload_name, started.upload_id, 1);
      const put = await putToUrl(part.url, randomBlob(16));
      upload = { name: started.upload_name, id: started.upload_id, etag: put.etag as string };
      snapshot = { keys: await hold.inspect.keys(), pending: await hold.inspect.pendingMultipartUploads() };
    });
    after(async function () {
      await hold?.close();
    });

    for (const badCase of CASES) {
      it(`${badCase.name} → ${badCase.status} ${badCase.code}, nothing changes`, async function () {
        const body = badCase.body(upload);
        const payload = typeof body === 'string' ? body : JSON.stringify({ did: DIDS.owner, ...body });
        const response = await request(`${hold.url}${badCase.path}`, {
          method: 'POST',
          headers: { authorization: `Bearer ${await hold.signer.sign(DIDS.owner, AUDIENCE)}`, 'content-type': badCase.contentType ?? 'application/json' },
          body: payload,
        });
        const json = (await response.body.json()) as { error?: { code: string; message: string } };
        expect(response.statusCode, JSON.stringify(json)).to.equal(badCase.status);
        expect(json.error?.code).to.equal(badCase.code);
        expect(json.error?.message).to.be.a('string').and.not.equal('');
        expect(await hold.inspect.keys()).to.deep.equal(snapshot.keys);
        expect(await hold.inspect.pendingMultipartUploads()).to.equal(snapshot.pending);
      });
    }

    it('answers 405 to a GET on an API endpoint and 404 to an unknown path', async function () {
      const get = await request(`${hold.url}/start-multipart`);
      expect(get.statusCode).to.equal(405);
      expect(((await get.body.json()) as { error: { code: string } }).error.code).to.equal('METHOD_NOT_ALLOWED');
      const unknown = await request(`${hold.url}/nope`, { method: 'POST' });
      expect(unknown.statusCode).to.equal(404);
      await unknown.body.dump();
    });
  });
}
