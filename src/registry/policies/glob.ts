/**
 * Patterns for repository names and tags in policies: `*` matches any run of
 * characters but `/`, `**` any run including `/`, `?` one character but `/`.
 * Everything else matches itself. A pattern matches the whole name.
 */
export type Matcher = (value: string) => boolean;

/** What a pattern may contain: the characters of names and tags, and the wildcards. */
export const PATTERN_CHARACTERS = /^[A-Za-z0-9._/*?-]+$/;

/** One step of a pattern: a character, `?`, `*` (a run without `/`) or `**` (any run). */
type Step = string | 1 | 2 | 3;
const ONE = 1;
const STAR = 2;
const GLOBSTAR = 3;

/**
 * Matches by walking the set of pattern positions a prefix of the value can
 * reach, one character at a time: time is (pattern length × value length)
 * whatever the pattern, so a pattern a user wrote (an access token's) cannot
 * make a match backtrack for minutes, as a regular expression would.
 */
export function compileGlob(pattern: string): Matcher {
  const steps: Step[] = [];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as string;
    if (c === '*' && pattern[i + 1] === '*') {
      steps.push(GLOBSTAR);
      i++;
    } else if (c === '*') steps.push(STAR);
    else if (c === '?') steps.push(ONE);
    else steps.push(c);
  }
  const last = steps.length;
  // Positions reached also reach past any wildcard that may match nothing.
  const close = (reached: Uint8Array) => {
    for (let i = 0; i < last; i++) if (reached[i] && (steps[i] === STAR || steps[i] === GLOBSTAR)) reached[i + 1] = 1;
    return reached;
  };
  return (value) => {
    let current = close(Uint8Array.of(1, ...new Array<number>(last).fill(0)));
    for (const c of value) {
      const next = new Uint8Array(last + 1);
      let any = false;
      for (let i = 0; i < last; i++) {
        if (!current[i]) continue;
        const step = steps[i] as Step;
        if (step === GLOBSTAR || (step === STAR && c !== '/')) next[i] = 1;
        else if (step === c || (step === ONE && c !== '/')) next[i + 1] = 1;
        else continue;
        any = true;
      }
      if (!any) return false;
      current = close(next);
    }
    return current[last] === 1;
  };
}

export function anyOf(patterns: readonly string[]): Matcher {
  const matchers = patterns.map(compileGlob);
  return (value) => matchers.some((match) => match(value));
}
