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
 * A pattern with two runs (`*`, `**`) at most becomes a regular expression:
 * its backtracking is at most quadratic in a name's 256 characters. One with
 * more is matched by walking the set of pattern positions a prefix of the
 * value can reach, one character at a time: time is pattern length × value
 * length whatever the pattern, so a pattern a user wrote (an access
 * token's) cannot make a match backtrack for minutes.
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
  if (steps.every((step) => typeof step === 'string')) return (value) => value === pattern;
  if (steps.filter((step) => step === STAR || step === GLOBSTAR).length <= 2) return regexOf(steps);
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

function regexOf(steps: readonly Step[]): Matcher {
  const source = steps.map((step) => (step === GLOBSTAR ? '.*' : step === STAR ? '[^/]*' : step === ONE ? '[^/]' : (step as string).replace(/[.]/g, '\\.'))).join('');
  const re = new RegExp(`^${source}$`);
  return (value) => re.test(value);
}

export function anyOf(patterns: readonly string[]): Matcher {
  const matchers = patterns.map(compileGlob);
  return (value) => matchers.some((match) => match(value));
}
