import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { parseByteRange } from '../../core/http-range.ts';
import type { FsBackend } from '../backends/fs.ts';
import { FS_ROUTE_PREFIX, type SignedOperation } from '../backends/fs-signer.ts';
import { HoldError } from '../errors.ts';
import { sendHoldError } from './errors.ts';

const KEY_PATTERN = /^[a-z0-9][a-z0-9._/-]*$/;

/**
 * The filesystem backend's data plane: the URLs the hold signs for itself.
 * Each request is checked against its signature before any byte is read.
 */
export function registerFsRoutes(app: FastifyInstance, backend: FsBackend): void {
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', (_request, _payload, done) => done(null));

    scope.put<{ Params: { uploadId: string; partNumber: string } }>(`${FS_ROUTE_PREFIX}/parts/:uploadId/:partNumber`, async (request, reply) => {
      const partNumber = Number(request.params.partNumber);
      verify(backend, request, { op: 'put-part', uploadId: request.params.uploadId, partNumber });
      const etag = await backend.writePart(request.params.uploadId, partNumber, request.raw);
      return reply.code(200).header('etag', etag).send();
    });

    scope.put<{ Params: { '*': string } }>(`${FS_ROUTE_PREFIX}/objects/*`, async (request, reply) => {
      const key = objectKey(request);
      verify(backend, request, { op: 'put-object', key });
      const etag = await backend.writeObject(key, request.raw);
      return reply.code(200).header('etag', etag).send();
    });

    scope.route<{ Params: { '*': string } }>({
      method: ['GET', 'HEAD'],
      url: `${FS_ROUTE_PREFIX}/objects/*`,
      exposeHeadRoute: false,
      handler: async (request, reply) => serveObject(backend, request, reply),
    });

    scope.setErrorHandler((error, request, reply) => sendHoldError(error, request, reply));
  });
}

async function serveObject(backend: FsBackend, request: FastifyRequest<{ Params: { '*': string } }>, reply: FastifyReply) {
  const key = objectKey(request);
  verify(backend, request, { op: request.method === 'HEAD' ? 'head-object' : 'get-object', key });
  const info = await backend.stat(key);
  if (!info) throw new HoldError('BLOB_UNKNOWN', 'no object at this URL');
  reply.header('accept-ranges', 'bytes').header('content-type', 'application/octet-stream');
  const range = parseByteRange(request.headers.range, info.size);
  if (range.kind === 'unsatisfiable') {
    reply.header('content-range', `bytes */${info.size}`);
    throw new HoldError('RANGE_INVALID');
  }
  if (range.kind === 'range') {
    reply.code(206).header('content-range', `bytes ${range.start}-${range.end}/${info.size}`);
    reply.header('content-length', range.end - range.start + 1);
    return request.method === 'HEAD' ? reply.send() : reply.send(backend.readObject(key, range));
  }
  reply.header('content-length', info.size);
  return request.method === 'HEAD' ? reply.send() : reply.send(backend.readObject(key));
}

function objectKey(request: FastifyRequest<{ Params: { '*': string } }>): string {
  const key = request.params['*'];
  if (!KEY_PATTERN.test(key) || key.split('/').some((segment) => segment === '..' || segment === '.')) {
    throw new HoldError('SIGNATURE_INVALID');
  }
  return key;
}

function verify(backend: FsBackend, request: FastifyRequest, operation: SignedOperation): void {
  const query = request.query as Record<string, string | undefined>;
  if (!backend.signer.verify(operation, query['X-Holdfast-Expires'], query['X-Holdfast-Signature'])) {
    throw new HoldError('SIGNATURE_INVALID');
  }
}
