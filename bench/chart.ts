/**
 * Draws the ratio goals as a bar chart in SVG: one bar per ratio on a log
 * scale, a dark line at 1× (parity) and a tick at each target. SVG is text:
 * no image encoder and no font to carry (the viewer renders the text), and
 * it stays sharp at any zoom.
 */
import type { Goal } from './goals.ts';

const INK = '#212529';
const GRID = '#ced4da';
const MET = '#2f9e44';
const MISSED = '#e03131';
const TARGET = '#1971c2';

const MIN_RATIO = 1 / 8;
const MAX_RATIO = 16;
/** Width of one character of the 13 px sans-serif labels, generously: only the label column's width depends on it. */
const CHAR_WIDTH = 7.5;

export function drawRatioChart(goals: Goal[], title: string): string {
  const ratios = goals.filter((goal) => goal.kind === 'ratio' && Number.isFinite(goal.value));
  const labelWidth = Math.max(...ratios.map((goal) => goal.label.length * CHAR_WIDTH)) + 24;
  const plotWidth = 560;
  const rowHeight = 28;
  const top = 48;
  const bottom = top + ratios.length * rowHeight;
  const width = Math.ceil(labelWidth + plotWidth + 80);
  const height = bottom + 56;
  const x = (ratio: number) => {
    const clamped = Math.min(MAX_RATIO, Math.max(MIN_RATIO, ratio));
    return round(labelWidth + ((Math.log2(clamped) - Math.log2(MIN_RATIO)) / (Math.log2(MAX_RATIO) - Math.log2(MIN_RATIO))) * plotWidth);
  };
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif" font-size="13">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    `<text x="16" y="26" font-size="18" font-weight="600" fill="${INK}">${escape(title)}</text>`,
  ];
  for (const tick of [0.125, 0.25, 0.5, 1, 2, 4, 8, 16]) {
    parts.push(`<line x1="${x(tick)}" y1="${top - 6}" x2="${x(tick)}" y2="${bottom}" stroke="${tick === 1 ? INK : GRID}" stroke-width="${tick === 1 ? 2 : 1}"/>`);
    parts.push(`<text x="${x(tick)}" y="${bottom + 16}" text-anchor="middle" fill="${INK}">${tick < 1 ? `1/${1 / tick}` : tick}×</text>`);
  }
  ratios.forEach((goal, index) => {
    const y = top + index * rowHeight;
    const from = Math.min(x(1), x(goal.value));
    const to = Math.max(x(1), x(goal.value));
    parts.push(
      `<text x="16" y="${y + 18}" fill="${INK}">${escape(goal.label)}</text>`,
      `<rect x="${from}" y="${y + 6}" width="${Math.max(2, round(to - from))}" height="${rowHeight - 12}" fill="${goal.met ? MET : MISSED}"><title>${escape(`${goal.label}: ${goal.value.toFixed(2)}× (target ${goal.limit}×)`)}</title></rect>`,
      `<rect x="${round(x(goal.limit) - 1.5)}" y="${y + 2}" width="3" height="${rowHeight - 4}" fill="${TARGET}"/>`,
      `<text x="${labelWidth + plotWidth + 10}" y="${y + 18}" fill="${INK}">${goal.value.toFixed(2)}×</text>`,
    );
  });
  parts.push(`<text x="16" y="${bottom + 42}" fill="${INK}">Each bar: the ratio its label names, on a log scale from 1×. Green: met; red: missed; blue: the target.</text>`, '</svg>', '');
  return parts.join('\n');
}

function round(value: number): number {
  return Math.round(value * 10) / 10;
}

export function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}
