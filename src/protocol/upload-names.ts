/**
 * Upload names, as they travel between the driver and the hold: the hold
 * makes them, the driver keeps them in its upload ids, and the hold parses
 * them back before anything reaches a storage key.
 */
export interface UploadName {
  readonly uuid: string;
  /** `uploads/temp-<uuid>`, the form that travels in the API's `digest` field. */
  readonly value: string;
}

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const UPLOAD_NAME_PATTERN = /^uploads\/temp-([0-9a-f-]{36})$/;

export function uploadNameFromUuid(uuid: string): UploadName {
  if (!UUID_PATTERN.test(uuid)) throw new TypeError('upload uuid must be a lower-case UUID');
  return Object.freeze({ uuid, value: `uploads/temp-${uuid}` });
}

export function parseUploadName(input: unknown): UploadName | undefined {
  if (typeof input !== 'string') return undefined;
  const match = UPLOAD_NAME_PATTERN.exec(input);
  if (!match || !UUID_PATTERN.test(match[1] as string)) return undefined;
  return uploadNameFromUuid(match[1] as string);
}

/** The upload named by `uuid`, if it is one. */
export function parseUploadUuid(uuid: string): UploadName | undefined {
  return UUID_PATTERN.test(uuid) ? uploadNameFromUuid(uuid) : undefined;
}
