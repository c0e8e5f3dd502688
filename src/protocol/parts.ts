/** An ETag without weak marker or quotes: S3 and the hold quote ETags differently. */
export function bareEtag(etag: string): string {
  return etag.trim().replace(/^W\//, '').replace(/^"+|"+$/g, '');
}

/** Whether two part lists name the same parts: numbers and ETags, in order. */
export function samePartList(a: readonly { part_number: number; etag: string }[], b: readonly { part_number: number; etag: string }[]): boolean {
  return a.length === b.length && a.every((part, index) => part.part_number === b[index]?.part_number && bareEtag(part.etag) === bareEtag(b[index]?.etag ?? ''));
}

/** Whether two lists of staged segments name the same objects at the same offsets. */
export function sameStagedSegments(
  a: readonly { offset: number; size: number; segment_id?: string }[],
  b: readonly { offset: number; size: number; segment_id?: string }[],
): boolean {
  return a.length === b.length && a.every((segment, index) => segment.offset === b[index]?.offset && segment.size === b[index]?.size && segment.segment_id === b[index]?.segment_id);
}
