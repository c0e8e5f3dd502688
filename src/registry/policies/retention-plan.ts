import type { ManifestRow, RepositorySnapshot, TagRow } from '../../metadata/oci/retention.ts';
import type { TagPredicate } from '../../metadata/oci/types.ts';
import type { RegistryConfig } from '../config.ts';
import { anyOf } from './glob.ts';

export type RetentionRule = RegistryConfig['policies']['retention'][number];

export interface RetentionPlan {
  tags: { row: TagRow; reason: string }[];
  /**
   * In layers: what no other removed manifest holds (layer 0), then what only
   * those held, and so on, so each index goes before what it lists and each
   * subject before its referrers. Ordered by layer, then digest.
   */
  manifests: { row: ManifestRow; reason: string; layer: number }[];
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

/**
 * What one rule removes from one repository (docs/POLICIES.md). A tag goes
 * unless something keeps it: immutability, a `keepTags` pattern, being among
 * the `keepLast` most recently pushed, or (with `olderThanDays`) being
 * younger. With `untaggedAfterHours`, a manifest goes unless a remaining tag
 * or its recent push keeps it, or a kept index lists it, or it is a referrer
 * of a kept manifest.
 */
export function planRetention(rule: RetentionRule, snapshot: RepositorySnapshot, now: Date, immutable?: TagPredicate): RetentionPlan {
  const tags = planTags(rule, snapshot.tags, now, immutable);
  if (rule.untaggedAfterHours === undefined) return { tags, manifests: [] };
  return { tags, manifests: planManifests(rule.untaggedAfterHours, snapshot, new Set(tags.map((item) => item.row.tag)), now) };
}

function planTags(rule: RetentionRule, tags: TagRow[], now: Date, immutable?: TagPredicate): RetentionPlan['tags'] {
  if (rule.keepTags.length === 0 && rule.keepLast === undefined && rule.olderThanDays === undefined) return [];
  const kept = anyOf(rule.keepTags);
  const newerThan = rule.olderThanDays === undefined ? undefined : new Date(now.getTime() - rule.olderThanDays * DAY_MS).toISOString();
  // Timestamps are ISO strings of one format: they sort as text.
  const byRecency = [...tags].sort((a, b) => (a.updatedAt === b.updatedAt ? compare(a.tag, b.tag) : a.updatedAt > b.updatedAt ? -1 : 1));
  const removed: RetentionPlan['tags'] = [];
  byRecency.forEach((tag, rank) => {
    if (immutable?.(tag.tag) || kept(tag.tag)) return;
    if (rule.keepLast !== undefined && rank < rule.keepLast) return;
    if (newerThan !== undefined && tag.updatedAt >= newerThan) return;
    const why: string[] = [];
    if (rule.keepTags.length > 0) why.push(`matches none of keepTags (${rule.keepTags.join(', ')})`);
    if (rule.keepLast !== undefined) why.push(`not among the ${rule.keepLast} most recently pushed tags`);
    if (rule.olderThanDays !== undefined) why.push(`pushed ${Math.floor((now.getTime() - Date.parse(tag.updatedAt)) / DAY_MS)} days ago, more than ${rule.olderThanDays}`);
    removed.push({ row: tag, reason: why.join('; ') });
  });
  return removed;
}

function planManifests(hours: number, snapshot: RepositorySnapshot, removedTags: Set<string>, now: Date): RetentionPlan['manifests'] {
  const pushedBefore = new Date(now.getTime() - hours * HOUR_MS).toISOString();
  const tagged = new Set(snapshot.tags.filter((tag) => !removedTags.has(tag.tag)).map((tag) => tag.digest));
  const lostTags = new Set(snapshot.tags.filter((tag) => removedTags.has(tag.tag)).map((tag) => tag.digest));
  const present = new Map(snapshot.manifests.map((manifest) => [manifest.digest, manifest]));
  // What each manifest keeps when it is kept: what it lists, and its referrers.
  const keeps = new Map<string, string[]>();
  const holders = new Map<string, string[]>();
  const link = (from: string, to: string) => {
    if (!present.has(from) || !present.has(to)) return;
    const kept = keeps.get(from);
    if (kept) kept.push(to);
    else keeps.set(from, [to]);
    const held = holders.get(to);
    if (held) held.push(from);
    else holders.set(to, [from]);
  };
  for (const { parent, child } of snapshot.children) link(parent, child);
  for (const manifest of snapshot.manifests) if (manifest.subject) link(manifest.subject, manifest.digest);

  const kept = new Set<string>();
  const queue = snapshot.manifests.filter((m) => tagged.has(m.digest) || m.createdAt > pushedBefore).map((m) => m.digest);
  for (const digest of queue) kept.add(digest);
  while (queue.length > 0) {
    for (const next of keeps.get(queue.pop() as string) ?? []) {
      if (!kept.has(next)) {
        kept.add(next);
        queue.push(next);
      }
    }
  }

  const doomed = new Set(snapshot.manifests.filter((m) => !kept.has(m.digest)).map((m) => m.digest));
  const reasonFor = (manifest: ManifestRow): string => {
    if (manifest.subject && present.has(manifest.subject)) return `a referrer of ${manifest.subject}, which this rule removes`;
    if (manifest.subject) return `a referrer whose subject ${manifest.subject} is not in the repository, pushed more than ${hours} h ago`;
    if ((holders.get(manifest.digest) ?? []).length > 0) return 'listed only by indexes this rule removes';
    if (lostTags.has(manifest.digest)) return `its tags are removed by this rule and it was pushed more than ${hours} h ago`;
    return `untagged, pushed more than ${hours} h ago`;
  };
  // Kahn's order over the doomed, a layer at a time: a manifest once every doomed holder of it is gone.
  const waiting = new Map([...doomed].map((digest) => [digest, (holders.get(digest) ?? []).filter((holder) => doomed.has(holder)).length]));
  let layer = [...doomed].filter((digest) => waiting.get(digest) === 0);
  const ordered: RetentionPlan['manifests'] = [];
  for (let depth = 0; layer.length > 0; depth++) {
    const next: string[] = [];
    for (const digest of layer.sort(compare)) {
      const manifest = present.get(digest) as ManifestRow;
      ordered.push({ row: manifest, reason: reasonFor(manifest), layer: depth });
      for (const held of keeps.get(digest) ?? []) {
        if (!doomed.has(held)) continue;
        const left = (waiting.get(held) as number) - 1;
        waiting.set(held, left);
        if (left === 0) next.push(held);
      }
    }
    layer = next;
  }
  return ordered;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
