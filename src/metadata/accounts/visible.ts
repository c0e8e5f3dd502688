import type { SqlCondition, SqlValue } from '../db.ts';

export interface CatalogViewer {
  /** The viewer's own namespace, if signed in. */
  handle?: string;
  /** Repositories and namespaces granted to the viewer. */
  repositories: readonly string[];
  namespaces: readonly string[];
  /** `auth.defaultVisibility: private`. */
  defaultPrivate: boolean;
}

/**
 * The repositories `viewer` may see in the catalog, as a condition on
 * `repositories.name`: their own namespace, what they were granted, and
 * whatever is not private (a repository row over its namespace's over the
 * default). The same SQL in both dialects, so the page is cut in the
 * database and a `Link` never names a repository the viewer cannot see.
 */
export function visibleRepositories(viewer: CatalogViewer): SqlCondition {
  const params: SqlValue[] = [];
  const inNamespace = (namespace: string) => {
    params.push(namespace, namespace.length + 1, `${namespace}/`);
    return '(repositories.name = ? OR substr(repositories.name, 1, ?) = ?)';
  };
  const admitted: string[] = [];
  if (viewer.handle !== undefined) admitted.push(inNamespace(viewer.handle));
  for (const namespace of viewer.namespaces) admitted.push(inNamespace(namespace));
  if (viewer.repositories.length > 0) {
    admitted.push(`repositories.name IN (${viewer.repositories.map(() => '?').join(', ')})`);
    params.push(...viewer.repositories);
  }
  admitted.push(
    `COALESCE(` +
      `(SELECT v.private FROM repository_visibility v WHERE v.kind = 'repository' AND v.name = repositories.name), ` +
      `(SELECT v.private FROM repository_visibility v WHERE v.kind = 'namespace' AND (v.name = repositories.name OR substr(repositories.name, 1, length(v.name) + 1) = v.name || '/')), ` +
      `${viewer.defaultPrivate ? 1 : 0}) = 0`,
  );
  return { sql: admitted.join(' OR '), params };
}
