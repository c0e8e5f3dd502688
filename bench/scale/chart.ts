/**
 * Log-log charts of a figure against N: decades on both axes, one polyline
 * per series (dashed for SQLite), lone points as circles, the fitted
 * exponent in the legend. Hand-written SVG, as bench/chart.ts.
 */
import { escape } from '../chart.ts';

export interface ChartSeries {
  label: string;
  points: { n: number; y: number }[];
  dashed?: boolean;
  exponent?: number | null;
}

const INK = '#212529';
const GRID = '#dee2e6';
const COLORS = ['#1971c2', '#e03131', '#2f9e44', '#f08c00', '#7048e8', '#0c8599', '#c2255c', '#5c940d', '#495057', '#862e9c'];

function decades(values: number[]): [number, number] {
  const positive = values.filter((v) => v > 0 && Number.isFinite(v));
  if (positive.length === 0) return [0, 1];
  const low = Math.floor(Math.log10(Math.min(...positive)));
  const high = Math.ceil(Math.log10(Math.max(...positive)));
  return [low, high === low ? low + 1 : high];
}

export function drawLogLog(title: string, yLabel: string, series: ChartSeries[]): string {
  const plotted = series.filter((s) => s.points.some((p) => p.y > 0 && Number.isFinite(p.y)));
  const left = 72;
  const top = 48;
  const plotWidth = 520;
  const plotHeight = 320;
  const legendWidth = 360;
  const width = left + plotWidth + 24 + legendWidth;
  const height = Math.max(top + plotHeight + 56, top + plotted.length * 22 + 24);
  const [xLow, xHigh] = decades(plotted.flatMap((s) => s.points.map((p) => p.n)));
  const [yLow, yHigh] = decades(plotted.flatMap((s) => s.points.map((p) => p.y)));
  const x = (n: number) => round(left + ((Math.log10(n) - xLow) / (xHigh - xLow)) * plotWidth);
  const y = (v: number) => round(top + plotHeight - ((Math.log10(v) - yLow) / (yHigh - yLow)) * plotHeight);
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="16" y="26" font-size="18" font-weight="600" fill="${INK}">${escape(title)}</text>`,
  ];
  for (let d = xLow; d <= xHigh; d++) {
    parts.push(`<line x1="${x(10 ** d)}" y1="${top}" x2="${x(10 ** d)}" y2="${top + plotHeight}" stroke="${GRID}"/>`, `<text x="${x(10 ** d)}" y="${top + plotHeight + 18}" text-anchor="middle" fill="${INK}">10^${d}</text>`);
  }
  for (let d = yLow; d <= yHigh; d++) {
    parts.push(`<line x1="${left}" y1="${y(10 ** d)}" x2="${left + plotWidth}" y2="${y(10 ** d)}" stroke="${GRID}"/>`, `<text x="${left - 6}" y="${y(10 ** d) + 4}" text-anchor="end" fill="${INK}">10^${d}</text>`);
  }
  parts.push(
    `<text x="${left + plotWidth / 2}" y="${top + plotHeight + 40}" text-anchor="middle" fill="${INK}">N (blobs = tags = repositories = open uploads)</text>`,
    `<text x="16" y="${top + plotHeight / 2}" fill="${INK}" transform="rotate(-90 16 ${top + plotHeight / 2})" text-anchor="middle">${escape(yLabel)}</text>`,
  );
  plotted.forEach((s, index) => {
    const color = COLORS[index % COLORS.length] as string;
    const points = s.points.filter((p) => p.y > 0 && Number.isFinite(p.y)).sort((a, b) => a.n - b.n);
    if (points.length > 1) {
      parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''} points="${points.map((p) => `${x(p.n)},${y(p.y)}`).join(' ')}"/>`);
    }
    for (const p of points) parts.push(`<circle cx="${x(p.n)}" cy="${y(p.y)}" r="3.5" fill="${color}"><title>${escape(`${s.label}: N=${p.n}, ${p.y}`)}</title></circle>`);
    const legendY = top + index * 22 + 8;
    const exponent = s.exponent === undefined || s.exponent === null ? '' : ` (N^${s.exponent.toFixed(2)})`;
    parts.push(
      `<line x1="${left + plotWidth + 24}" y1="${legendY}" x2="${left + plotWidth + 52}" y2="${legendY}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ''}/>`,
      `<text x="${left + plotWidth + 58}" y="${legendY + 4}" fill="${INK}">${escape(`${s.label}${exponent}`)}</text>`,
    );
  });
  parts.push('</svg>', '');
  return parts.join('\n');
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}
