/**
 * Matches `/v2/…` paths. Repository names contain slashes, so each route is
 * anchored on its trailing keyword (`/blobs/uploads/`, `/manifests/`, …) and
 * the name is everything before it.
 */
export type RouteName =
  | 'base'
  | 'catalog'
  | 'uploadStart'
  | 'upload'
  | 'blob'
  | 'manifest'
  | 'tags'
  | 'referrers';

export interface RouteMatch {
  route: RouteName;
  name?: string;
  /** Digest, tag, or upload id, depending on the route. */
  reference?: string;
}

const ROUTES: readonly { route: RouteName; pattern: RegExp }[] = [
  { route: 'base', pattern: /^\/v2\/?$/ },
  { route: 'catalog', pattern: /^\/v2\/_catalog$/ },
  { route: 'uploadStart', pattern: /^\/v2\/(.+)\/blobs\/uploads\/?$/ },
  { route: 'upload', pattern: /^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/ },
  { route: 'blob', pattern: /^\/v2\/(.+)\/blobs\/([^/]+)$/ },
  { route: 'manifest', pattern: /^\/v2\/(.+)\/manifests\/([^/]+)$/ },
  { route: 'tags', pattern: /^\/v2\/(.+)\/tags\/list$/ },
  { route: 'referrers', pattern: /^\/v2\/(.+)\/referrers\/([^/]+)$/ },
];

export function matchRoute(path: string): RouteMatch | undefined {
  for (const { route, pattern } of ROUTES) {
    const match = pattern.exec(path);
    if (match) return { route, name: match[1], reference: match[2] };
  }
  return undefined;
}

/** Which permission each method needs on each route. */
export function requiredAction(route: RouteName, method: string): 'pull' | 'push' | 'delete' | 'catalog' | 'none' {
  if (route === 'base') return 'none';
  if (route === 'catalog') return 'catalog';
  if (method === 'GET' || method === 'HEAD') return route === 'upload' ? 'push' : 'pull';
  // Cancelling one's own upload is part of pushing; deleting a manifest, tag or blob is not.
  if (method === 'DELETE' && route !== 'upload') return 'delete';
  return 'push';
}
