import type { Db } from '../db.ts';

/**
 * The repository named `namespace` and those under `namespace/`, bytewise: up
 * to `namespace0` ('0' follows '/'). `inNamespace` is the condition on
 * `column`; `namespaceRange` its three parameters, in order.
 */
export function inNamespace(db: Db, column: string): string {
  const ordered = db.dialect === 'postgres' ? `${column} COLLATE "C"` : column;
  return `(${column} = ? OR (${ordered} >= ? AND ${ordered} < ?))`;
}

export function namespaceRange(namespace: string): [string, string, string] {
  return [namespace, `${namespace}/`, `${namespace}0`];
}
