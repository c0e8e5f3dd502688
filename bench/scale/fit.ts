/** Growth exponents: least squares of ln y on ln N, over the sizes measured. */
export interface Fit {
  exponent: number;
  r2: number;
  /** y at the largest N ÷ y at the smallest. */
  ratio: number;
}

export function fitPowerLaw(points: readonly { n: number; y: number }[]): Fit {
  const usable = points.filter((p) => p.n > 0 && p.y > 0 && Number.isFinite(p.y)).sort((a, b) => a.n - b.n);
  if (usable.length < 2) return { exponent: Number.NaN, r2: Number.NaN, ratio: Number.NaN };
  const xs = usable.map((p) => Math.log(p.n));
  const ys = usable.map((p) => Math.log(p.y));
  const mean = (values: number[]) => values.reduce((sum, v) => sum + v, 0) / values.length;
  const mx = mean(xs);
  const my = mean(ys);
  let sxy = 0;
  let sxx = 0;
  let syy = 0;
  xs.forEach((x, k) => {
    const y = ys[k] as number;
    sxy += (x - mx) * (y - my);
    sxx += (x - mx) ** 2;
    syy += (y - my) ** 2;
  });
  const exponent = sxy / sxx;
  const r2 = syy === 0 ? 1 : (sxy * sxy) / (sxx * syy);
  const first = usable[0] as { y: number };
  const last = usable[usable.length - 1] as { y: number };
  return { exponent, r2, ratio: last.y / first.y };
}
