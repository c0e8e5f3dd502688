import type { HoldEndpointName, HoldRequest, HoldResponse } from '../../protocol/hold-api.ts';
import type { HoldService } from '../service.ts';

/**
 * The flow behind an endpoint of the contract in src/protocol/hold-api.ts
 * (docs/PRESIGNED_URLS.md): it takes the endpoint's validated request and
 * answers the endpoint's answer, both types derived from its schemas, so the
 * compiler checks every answer. `claimant` is whose claims the caller's are:
 * its token's issuer, and service when named (`claimantOf`).
 */
export type HoldHandler<K extends HoldEndpointName> = (service: HoldService, did: string, request: HoldRequest<K>, claimant: string) => Promise<HoldResponse<K>>;

/** One handler per endpoint: an endpoint without one, or one answering another shape, does not compile. */
export const HOLD_ROUTES: { readonly [K in HoldEndpointName]: HoldHandler<K> } = Object.freeze({
  startMultipart: (s, did, request) => s.uploads.start(did, request),
  partPresignedUrl: (s, did, request) => s.presigner.partUrl(did, request),
  completeMultipart: (s, did, request) => s.uploads.complete(did, request),
  abortMultipart: (s, did, request) => s.uploads.abort(did, request),
  putPresignedUrl: (s, did, request) => s.presigner.putUrl(did, request),
  getPresignedUrl: (s, did, request) => s.presigner.getUrl(did, request),
  headPresignedUrl: (s, did, request) => s.presigner.getUrl(did, { ...request, method: 'HEAD' }),
  move: (s, did, request, claimant) => s.publisher.move(did, request, claimant),
  claim: (s, did, request, claimant) => s.claims.claim(did, request, claimant),
  release: (s, did, request, claimant) => s.claims.release(did, request, claimant),
  stat: (s, did, request) => s.claims.stat(did, request),
  delete: (s, did, request, claimant) => s.claims.delete(did, request, claimant),
  uploadStatus: (s, did, request) => s.uploads.status(did, request),
  uploadProgress: (s, did, request) => s.uploads.progress(did, request),
});
