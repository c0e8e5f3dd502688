/** Repository names, tags and references as the distribution spec defines them. */
const NAME_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const NAME_PATTERN = new RegExp(`^${NAME_COMPONENT}(?:/${NAME_COMPONENT})*$`);
const TAG_PATTERN = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
const MAX_NAME_LENGTH = 255;

export function isRepositoryName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && NAME_PATTERN.test(name);
}

export function isTag(reference: string): boolean {
  return TAG_PATTERN.test(reference);
}

/** Upload ids are driver writer ids: `<uuid>.<base64url>`. */
export function isUploadId(id: string): boolean {
  return /^[0-9a-f-]{36}\.[A-Za-z0-9_-]{1,2048}$/.test(id);
}
