/**
 * Client mistakes and the answer the spec requires for each. Every case must
 * get its 4xx and change nothing. `{upload}` is a live upload session
 * holding 5 bytes, `{fresh}` a new session made for the one request,
 * `{blob}` a blob in the repository, `{missing}` a digest nobody pushed.
 */
export interface BadInputCase {
  name: string;
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  headers?: Record<string, string>;
  body?: string;
  status: number;
  code?: string;
}

const manifest = (config: string, layers: string[] = []) =>
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
    layers: layers.map((digest) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest, size: 1 })),
  });
const OCI = { 'content-type': 'application/vnd.oci.image.manifest.v1+json' };

export const BAD_INPUT_CASES: readonly BadInputCase[] = [
  // Repository names
  { name: 'upper-case name', method: 'GET', path: '/v2/alice/App/tags/list', status: 400, code: 'NAME_INVALID' },
  { name: 'name component starting with a dot', method: 'GET', path: '/v2/alice/.hidden/tags/list', status: 400, code: 'NAME_INVALID' },
  { name: 'name with a trailing dash', method: 'POST', path: '/v2/alice/app-/blobs/uploads/', status: 400, code: 'NAME_INVALID' },
  { name: 'name with double slash', method: 'HEAD', path: '/v2/alice//app/blobs/{blob}', status: 400, code: 'NAME_INVALID' },
  { name: 'name with an encoded slash', method: 'GET', path: '/v2/alice%2Fapp/tags/list', status: 400, code: 'NAME_INVALID' },
  { name: 'name over 255 characters', method: 'GET', path: `/v2/alice/${'a'.repeat(260)}/tags/list`, status: 400, code: 'NAME_INVALID' },
  // Digests
  { name: 'blob digest without algorithm', method: 'HEAD', path: '/v2/alice/app/blobs/abc', status: 400, code: 'DIGEST_INVALID' },
  { name: 'blob digest truncated', method: 'GET', path: `/v2/alice/app/blobs/sha256:${'a'.repeat(63)}`, status: 400, code: 'DIGEST_INVALID' },
  { name: 'blob digest with upper-case hex', method: 'GET', path: `/v2/alice/app/blobs/sha256:${'A'.repeat(64)}`, status: 400, code: 'DIGEST_INVALID' },
  { name: 'blob digest with unknown algorithm', method: 'GET', path: `/v2/alice/app/blobs/md5:${'a'.repeat(32)}`, status: 400, code: 'DIGEST_INVALID' },
  { name: 'blob digest with traversal', method: 'GET', path: '/v2/alice/app/blobs/sha256:..%2F..%2Fetc', status: 400, code: 'DIGEST_INVALID' },
  { name: 'sha512 digest of sha256 length', method: 'GET', path: `/v2/alice/app/blobs/sha512:${'a'.repeat(64)}`, status: 400, code: 'DIGEST_INVALID' },
  { name: 'monolithic POST with a malformed digest', method: 'POST', path: '/v2/alice/app/blobs/uploads/?digest=sha256:nothex', body: 'x', status: 400, code: 'DIGEST_INVALID' },
  { name: 'mount with a malformed digest', method: 'POST', path: '/v2/alice/app/blobs/uploads/?mount=bogus&from=alice/other', status: 400, code: 'DIGEST_INVALID' },
  { name: 'PUT upload without digest', method: 'PUT', path: '{upload}', status: 400, code: 'DIGEST_INVALID' },
  { name: 'PUT upload with a malformed digest', method: 'PUT', path: '{upload}?digest=sha256:zz', status: 400, code: 'DIGEST_INVALID' },
  { name: 'referrers of a malformed digest', method: 'GET', path: '/v2/alice/app/referrers/sha256:xyz', status: 400, code: 'DIGEST_INVALID' },
  // Unknown things
  { name: 'unknown blob', method: 'HEAD', path: '/v2/alice/app/blobs/{missing}', status: 404 },
  { name: 'unknown blob GET', method: 'GET', path: '/v2/alice/app/blobs/{missing}', status: 404, code: 'BLOB_UNKNOWN' },
  { name: 'delete of an unknown blob', method: 'DELETE', path: '/v2/alice/app/blobs/{missing}', status: 404, code: 'BLOB_UNKNOWN' },
  { name: 'blob from another repository', method: 'GET', path: '/v2/alice/other/blobs/{blob}', status: 404, code: 'BLOB_UNKNOWN' },
  { name: 'unknown upload id', method: 'GET', path: '/v2/alice/app/blobs/uploads/00000000-0000-4000-8000-000000000000.eA', status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'malformed upload id', method: 'PATCH', path: '/v2/alice/app/blobs/uploads/..%2F..%2Fx', body: 'x', status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'upload id used in another repository', method: 'GET', path: '{upload:alice/other}', status: 404, code: 'BLOB_UPLOAD_UNKNOWN' },
  { name: 'unknown manifest tag', method: 'GET', path: '/v2/alice/app/manifests/nope', status: 404, code: 'MANIFEST_UNKNOWN' },
  { name: 'unknown manifest digest', method: 'GET', path: '/v2/alice/app/manifests/{missing}', status: 404, code: 'MANIFEST_UNKNOWN' },
  { name: 'delete of an unknown manifest', method: 'DELETE', path: '/v2/alice/app/manifests/{missing}', status: 404, code: 'MANIFEST_UNKNOWN' },
  { name: 'delete of an unknown tag', method: 'DELETE', path: '/v2/alice/app/manifests/nope', status: 404, code: 'MANIFEST_UNKNOWN' },
  { name: 'tags of an unknown repository', method: 'GET', path: '/v2/alice/other/tags/list', status: 404, code: 'NAME_UNKNOWN' },
  // Content-Range
  { name: 'Content-Range past the offset', method: 'PATCH', path: '{upload}', headers: { 'content-range': '7-11' }, body: 'abcde', status: 416 },
  { name: 'Content-Range overlapping the start', method: 'PATCH', path: '{upload}', headers: { 'content-range': '0-4' }, body: 'abcde', status: 416 },
  { name: 'Content-Range malformed', method: 'PATCH', path: '{upload}', headers: { 'content-range': 'bytes=abc' }, body: 'abcde', status: 416 },
  { name: 'Content-Range end before start', method: 'PATCH', path: '{upload}', headers: { 'content-range': '9-3' }, body: 'abcde', status: 416 },
  { name: 'Content-Range negative', method: 'PATCH', path: '{upload}', headers: { 'content-range': '-1-3' }, body: 'abcde', status: 416 },
  { name: 'Content-Range huge', method: 'PATCH', path: '{upload}', headers: { 'content-range': '99999999999999-999999999999999' }, body: 'abcde', status: 416 },
  { name: 'Content-Range longer than the body', method: 'PATCH', path: '{upload}', headers: { 'content-range': '5-9' }, body: 'abc', status: 416 },
  { name: 'Content-Length that disagrees with Content-Range', method: 'PATCH', path: '{upload}', headers: { 'content-range': '5-5' }, body: 'abcdef', status: 416 },
  // Content
  { name: 'PUT digest that mismatches the content', method: 'PUT', path: '{fresh}?digest={missing}', body: 'not that', status: 400, code: 'DIGEST_INVALID' },
  { name: 'monolithic POST whose digest mismatches', method: 'POST', path: '/v2/alice/app/blobs/uploads/?digest={missing}', body: 'not that', status: 400, code: 'DIGEST_INVALID' },
  { name: 'manifest that is not JSON', method: 'PUT', path: '/v2/alice/app/manifests/bad', headers: OCI, body: '{not json', status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest that is a JSON array', method: 'PUT', path: '/v2/alice/app/manifests/bad', headers: OCI, body: '[]', status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest of unknown media type', method: 'PUT', path: '/v2/alice/app/manifests/bad', headers: { 'content-type': 'application/x-nope' }, body: '{"schemaVersion":2}', status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest whose mediaType disagrees with Content-Type', method: 'PUT', path: '/v2/alice/app/manifests/bad', headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' }, body: manifest('{blob}'), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest with schemaVersion 1', method: 'PUT', path: '/v2/alice/app/manifests/bad', headers: OCI, body: '{"schemaVersion":1,"mediaType":"application/vnd.oci.image.manifest.v1+json"}', status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest with a bad config digest', method: 'PUT', path: '/v2/alice/app/manifests/bad', headers: OCI, body: manifest('sha256:nope'), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest with a negative size', method: 'PUT', path: '/v2/alice/app/manifests/bad', headers: OCI, body: manifest('{blob}').replace('"size":2', '"size":-2'), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest without layers', method: 'PUT', path: '/v2/alice/app/manifests/bad', headers: OCI, body: '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"a/b","digest":"{blob}","size":2}}', status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest referencing a missing config', method: 'PUT', path: '/v2/alice/app/manifests/bad', headers: OCI, body: manifest('{missing}'), status: 400, code: 'MANIFEST_BLOB_UNKNOWN' },
  { name: 'manifest referencing a missing layer', method: 'PUT', path: '/v2/alice/app/manifests/bad', headers: OCI, body: manifest('{blob}', ['{missing}']), status: 400, code: 'MANIFEST_BLOB_UNKNOWN' },
  { name: 'index referencing a missing manifest', method: 'PUT', path: '/v2/alice/app/manifests/bad', headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' }, body: '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{missing}","size":3}]}', status: 400, code: 'MANIFEST_BLOB_UNKNOWN' },
  { name: 'manifest PUT by a digest it does not hash to', method: 'PUT', path: '/v2/alice/app/manifests/{missing}', headers: OCI, body: manifest('{blob}'), status: 400, code: 'DIGEST_INVALID' },
  { name: 'manifest PUT with an invalid tag', method: 'PUT', path: '/v2/alice/app/manifests/-bad', headers: OCI, body: manifest('{blob}'), status: 400, code: 'MANIFEST_INVALID' },
  { name: 'manifest over 4 MiB', method: 'PUT', path: '/v2/alice/app/manifests/big', headers: OCI, body: `{"pad":"${'x'.repeat(4 * 1024 * 1024)}"}`, status: 413 },
  // Methods and pagination
  { name: 'POST to a manifest', method: 'POST', path: '/v2/alice/app/manifests/latest', status: 405, code: 'UNSUPPORTED' },
  { name: 'PATCH to a blob', method: 'PATCH', path: '/v2/alice/app/blobs/{blob}', body: 'x', status: 405, code: 'UNSUPPORTED' },
  { name: 'PUT to tags list', method: 'PUT', path: '/v2/alice/app/tags/list', status: 405, code: 'UNSUPPORTED' },
  { name: 'DELETE of the catalog', method: 'DELETE', path: '/v2/_catalog', status: 405, code: 'UNSUPPORTED' },
  { name: 'POST to the base endpoint', method: 'POST', path: '/v2/', status: 405, code: 'UNSUPPORTED' },
  { name: 'tags list with n=-1', method: 'GET', path: '/v2/alice/app/tags/list?n=-1', status: 405, code: 'UNSUPPORTED' },
  { name: 'tags list with n=abc', method: 'GET', path: '/v2/alice/app/tags/list?n=abc', status: 405, code: 'UNSUPPORTED' },
  { name: 'tags list with a NUL in last', method: 'GET', path: '/v2/alice/app/tags/list?last=%00', status: 405, code: 'UNSUPPORTED' },
  { name: 'tags list with a control character in last', method: 'GET', path: '/v2/alice/app/tags/list?last=a%1Fb', status: 405, code: 'UNSUPPORTED' },
  { name: 'tags list with a 300-character last', method: 'GET', path: `/v2/alice/app/tags/list?last=${'a'.repeat(300)}`, status: 405, code: 'UNSUPPORTED' },
  { name: 'an unknown route', method: 'GET', path: '/v2/alice/app/nothing/here', status: 404 },
];
