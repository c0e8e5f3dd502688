import { randomUUID } from 'node:crypto';
import type { ChangeCause, RegistryChange } from '../../metadata/oci/types.ts';
import type { EventKind } from '../config.ts';

/** What happened, before it becomes a CloudEvent: a change to the metadata, or one of the reports made outside a change. */
export type RegistryEvent =
  | { change: RegistryChange; cause: ChangeCause }
  | { change: { kind: 'manifest.pulled'; repository: string; digest: string; mediaType: string; size: number; tag?: string }; cause: ChangeCause }
  | { change: { kind: 'quota.exceeded'; repository: string; namespace: string; limit: number; used: number; adding: number }; cause: ChangeCause };

export const EVENT_TYPE_PREFIX = 'dev.holdfast.';

/** The repository an event is about, or `''` (a GC pass). */
export function repositoryOf(event: RegistryEvent): string {
  return 'repository' in event.change ? event.change.repository : '';
}

export function kindOf(event: RegistryEvent): EventKind {
  return event.change.kind;
}

/**
 * A CloudEvents 1.0 JSON body (structured mode). The id is new here and
 * stays with the stored body, so every attempt and every instance sends the
 * same one.
 */
export function cloudEvent(event: RegistryEvent, source: string, time: Date): { id: string; body: string } {
  const id = randomUUID();
  const { kind, ...fields } = event.change;
  const data = bounded(fields);
  const subject = subjectOf(event.change);
  const body = JSON.stringify({
    specversion: '1.0',
    id,
    source,
    type: `${EVENT_TYPE_PREFIX}${kind}`,
    ...(subject === undefined ? {} : { subject }),
    time: time.toISOString(),
    datacontenttype: 'application/json',
    data: { ...data, ...(event.cause.actor === undefined ? {} : { actor: event.cause.actor }), ...(event.cause.reason === undefined ? {} : { reason: event.cause.reason }) },
  });
  return { id, body };
}

/** Longer pushed strings (an artifact type may be megabytes) are left out, and named in `omitted`. */
const MAX_FIELD = 255;
/** Tags listed with a deleted manifest; `tagCount` says how many there were. */
const MAX_TAGS = 100;

/** An event's data with every field bounded, so a body stays a few KiB whatever a push carried. */
function bounded(fields: Record<string, unknown>): Record<string, unknown> {
  const data: Record<string, unknown> = {};
  const omitted: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (typeof value === 'string' && value.length > MAX_FIELD) omitted.push(key);
    else if (Array.isArray(value) && value.length > MAX_TAGS) {
      data[key] = value.slice(0, MAX_TAGS);
      data.tagCount = value.length;
    } else data[key] = value;
  }
  return omitted.length === 0 ? data : { ...data, omitted };
}

function subjectOf(change: RegistryEvent['change']): string | undefined {
  switch (change.kind) {
    case 'manifest.pushed':
    case 'manifest.pulled':
      return change.tag === undefined ? `${change.repository}@${change.digest}` : `${change.repository}:${change.tag}`;
    case 'manifest.deleted':
      return `${change.repository}@${change.digest}`;
    case 'tag.deleted':
      return `${change.repository}:${change.tag}`;
    case 'quota.exceeded':
      return change.repository;
    case 'gc.completed':
      return undefined;
  }
}
