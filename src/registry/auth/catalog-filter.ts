import type { CatalogFilter, Resume } from '../../metadata/oci/catalog-walk.ts';
import { namespaceOf, type RepositoryAccess } from './access.ts';

export interface CatalogViewer {
  /** The viewer's own namespace, if signed in. */
  handle?: string;
  /** Repositories and namespaces granted to the viewer. */
  repositories: readonly string[];
  namespaces: readonly string[];
}

const NEXT: Resume = Object.freeze({ kind: 'next' });
const END: Resume = Object.freeze({ kind: 'end' });

/**
 * What `viewer` sees of the catalog: their own namespace, what they were
 * granted, and whatever is not private. The rules are the ones pulls are
 * checked against, from the same snapshot.
 *
 * A namespace `ns` holds the repository named `ns` and those under `ns/`,
 * which run up to `ns0` ('0' follows '/'); names like `ns-x` sort between
 * the two. After a hidden repository in a namespace the viewer may not see,
 * the next name that could be shown is the least of: the end of that
 * namespace's `ns/` run (when what no row names is public), and the next
 * namespace or repository the viewer was granted or a row makes public.
 */
export function catalogFilter(access: RepositoryAccess, viewer: CatalogViewer): CatalogFilter {
  const admittedNamespaces = new Set(viewer.namespaces);
  if (viewer.handle !== undefined) admittedNamespaces.add(viewer.handle);
  const grantedRepositories = new Set(viewer.repositories);
  const admitted = (name: string) => admittedNamespaces.has(namespaceOf(name)) || grantedRepositories.has(name);
  let own: string[] | undefined;
  return {
    shows: (name) => admitted(name) || !access.isPrivate(name),
    resumeAfter(name) {
      const namespace = namespaceOf(name);
      // Hidden in a namespace the viewer sees: that repository alone was made private.
      if (!access.isNamespacePrivate(namespace)) return NEXT;
      // Past a private namespace's own name, the next name may be public (`ns-x`) when what no row names is.
      if (!access.defaultPrivate && name === namespace) return NEXT;
      // Sorted on the first private stretch: a walk that hides nothing never needs them.
      own ??= [...grantedRepositories, ...[...admittedNamespaces].flatMap((granted) => [granted, `${granted}/`])].sort();
      const least = earliest(firstAfter(access.publicStarts, name), firstAfter(own, name), access.defaultPrivate ? undefined : `${namespace}0`);
      return least === undefined ? END : { kind: 'from', name: least };
    },
  };
}

/** The first of `sorted` (ascending) after `name`. */
function firstAfter(sorted: readonly string[], name: string): string | undefined {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if ((sorted[middle] as string) <= name) low = middle + 1;
    else high = middle;
  }
  return sorted[low];
}

function earliest(...names: (string | undefined)[]): string | undefined {
  let least: string | undefined;
  for (const name of names) if (name !== undefined && (least === undefined || name < least)) least = name;
  return least;
}
