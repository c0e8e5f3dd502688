import type { HoldEndpointName, HoldRequest } from '../../protocol/hold-api.ts';
import type { HoldService } from '../service.ts';

/**
 * The service call behind each endpoint of the contract in
 * src/protocol/hold-api.ts (paths, bodies, answers; see
 * docs/PRESIGNED_URLS.md).
 */
export interface HoldRoute<K extends HoldEndpointName = HoldEndpointName> {
  readonly endpoint: K;
  /** `issuer` is whose claims the caller's are: its service token's issuer, and service when named (`claimantOf`). */
  readonly run: (service: HoldService, did: string, body: HoldRequest<K>, issuer: string) => Promise<unknown>;
}

function route<K extends HoldEndpointName>(endpoint: K, run: HoldRoute<K>['run']): HoldRoute {
  return { endpoint, run } as unknown as HoldRoute;
}

export const HOLD_ROUTES: readonly HoldRoute[] = Object.freeze([
  route('startMultipart', (s, did, b) => s.startMultipart(did, b)),
  route('partPresignedUrl', (s, did, b) => s.partPresignedUrl(did, b)),
  route('completeMultipart', (s, did, b) => s.completeMultipart(did, b)),
  route('abortMultipart', (s, did, b) => s.abortMultipart(did, b)),
  route('putPresignedUrl', (s, did, b) => s.putPresignedUrl(did, b)),
  route('getPresignedUrl', (s, did, b) => s.getPresignedUrl(did, b)),
  route('headPresignedUrl', (s, did, b) => s.getPresignedUrl(did, { ...b, method: 'HEAD' })),
  route('move', (s, did, b, issuer) => s.move(did, b, issuer)),
  route('claim', (s, did, b, issuer) => s.claim(did, b, issuer)),
  route('release', (s, did, b, issuer) => s.release(did, b, issuer)),
  route('stat', (s, did, b) => s.stat(did, b)),
  route('delete', (s, did, b, issuer) => s.delete(did, b, issuer)),
  route('uploadStatus', (s, did, b) => s.uploadStatus(did, b)),
  route('uploadProgress', (s, did, b) => s.uploadProgress(did, b)),
]);

