import type { HoldService } from '../service.ts';
import { HOLD_SCHEMAS, type HoldRequest, type HoldSchemas } from './schemas.ts';

/**
 * The hold's JSON API: each path, its body schema, and the service call it
 * makes. The names are the contract with registries; see
 * docs/PRESIGNED_URLS.md.
 */
export interface HoldRoute<K extends keyof HoldSchemas = keyof HoldSchemas> {
  readonly path: string;
  readonly schema: K;
  /** Query parameters merged under the body (the seed's `/move?from=&to=`). */
  readonly acceptsQuery?: boolean;
  /** `issuer` is the calling registry's identity, from its service token. */
  readonly run: (service: HoldService, did: string, body: HoldRequest<K>, issuer: string) => Promise<unknown>;
}

function route<K extends keyof HoldSchemas>(definition: HoldRoute<K>): HoldRoute {
  return definition as unknown as HoldRoute;
}

export const HOLD_ROUTES: readonly HoldRoute[] = Object.freeze([
  route({ path: '/start-multipart', schema: 'startMultipart', run: (s, did, b) => s.startMultipart(did, b) }),
  route({ path: '/part-presigned-url', schema: 'partPresignedUrl', run: (s, did, b) => s.partPresignedUrl(did, b) }),
  route({ path: '/complete-multipart', schema: 'completeMultipart', run: (s, did, b) => s.completeMultipart(did, b) }),
  route({ path: '/abort-multipart', schema: 'abortMultipart', run: (s, did, b) => s.abortMultipart(did, b) }),
  route({ path: '/put-presigned-url', schema: 'putPresignedUrl', run: (s, did, b) => s.putPresignedUrl(did, b) }),
  route({ path: '/get-presigned-url', schema: 'getPresignedUrl', run: (s, did, b) => s.getPresignedUrl(did, b) }),
  route({
    path: '/head-presigned-url',
    schema: 'getPresignedUrl',
    run: (s, did, b) => s.getPresignedUrl(did, { ...b, method: 'HEAD' }),
  }),
  route({ path: '/move', schema: 'move', acceptsQuery: true, run: (s, did, b, issuer) => s.move(did, b, issuer) }),
  route({ path: '/claim', schema: 'stat', run: (s, did, b, issuer) => s.claim(did, b, issuer) }),
  route({ path: '/release', schema: 'stat', run: (s, did, b, issuer) => s.release(did, b, issuer) }),
  route({ path: '/stat', schema: 'stat', run: (s, did, b) => s.stat(did, b) }),
  route({ path: '/delete', schema: 'delete', run: (s, did, b, issuer) => s.delete(did, b, issuer) }),
  route({ path: '/upload-status', schema: 'uploadStatus', run: (s, did, b) => s.uploadStatus(did, b) }),
  route({ path: '/upload-progress', schema: 'uploadProgress', run: (s, did, b) => s.uploadProgress(did, b) }),
]);

export { HOLD_SCHEMAS };
