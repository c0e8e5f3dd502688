/** mulberry32: a small seeded generator, so a failing round can be replayed. */
export function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed of a property test: `HOLDFAST_PROPERTY_SEED` to replay one, else a fresh one. */
export function propertySeed(): number {
  return Number(process.env.HOLDFAST_PROPERTY_SEED ?? Math.floor(Math.random() * 2 ** 31));
}
