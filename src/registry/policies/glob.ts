/**
 * Patterns for repository names and tags in policies: `*` matches any run of
 * characters but `/`, `**` any run including `/`, `?` one character but `/`.
 * Everything else matches itself. A pattern matches the whole name.
 */
export type Matcher = (value: string) => boolean;

/** What a pattern may contain: the characters of names and tags, and the wildcards. */
export const PATTERN_CHARACTERS = /^[A-Za-z0-9._/*?-]+$/;

export function compileGlob(pattern: string): Matcher {
  let source = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*' && pattern[i + 1] === '*') {
      source += '.*';
      i++;
    } else if (c === '*') source += '[^/]*';
    else if (c === '?') source += '[^/]';
    else source += c.replace(/[.]/g, '\\.');
  }
  const re = new RegExp(`^${source}$`);
  return (value) => re.test(value);
}

export function anyOf(patterns: readonly string[]): Matcher {
  const matchers = patterns.map(compileGlob);
  return (value) => matchers.some((match) => match(value));
}
