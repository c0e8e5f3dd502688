/**
 * Draws the ratio goals as a bar chart (PNG): one bar per ratio on a log
 * scale, a grey line at 1× (parity) and a tick at each target.
 */
import { Canvas, type Rgb } from './png-canvas.ts';
import type { Goal } from './goals.ts';

const WHITE: Rgb = [255, 255, 255];
const INK: Rgb = [33, 37, 41];
const GRID: Rgb = [206, 212, 218];
const MET: Rgb = [47, 158, 68];
const MISSED: Rgb = [224, 49, 49];
const TARGET: Rgb = [25, 113, 194];

const MIN_RATIO = 1 / 8;
const MAX_RATIO = 16;

export function drawRatioChart(goals: Goal[], title: string): Buffer {
  const ratios = goals.filter((goal) => goal.kind === 'ratio' && Number.isFinite(goal.value));
  const scale = 2;
  const labelWidth = Math.max(...ratios.map((goal) => Canvas.textWidth(goal.label, scale))) + 24;
  const plotWidth = 640;
  const rowHeight = 44;
  const top = 70;
  const width = labelWidth + plotWidth + 150;
  const height = top + ratios.length * rowHeight + 70;
  const canvas = new Canvas(width, height, WHITE);
  const x = (ratio: number) => {
    const clamped = Math.min(MAX_RATIO, Math.max(MIN_RATIO, ratio));
    return labelWidth + ((Math.log2(clamped) - Math.log2(MIN_RATIO)) / (Math.log2(MAX_RATIO) - Math.log2(MIN_RATIO))) * plotWidth;
  };
  canvas.text(16, 18, title, INK, 3);
  for (const tick of [0.125, 0.25, 0.5, 1, 2, 4, 8, 16]) {
    canvas.fillRect(x(tick), top - 8, 1, ratios.length * rowHeight + 8, GRID);
    const label = tick < 1 ? `1/${1 / tick}` : `${tick}`;
    canvas.text(x(tick) - Canvas.textWidth(label, scale) / 2, top + ratios.length * rowHeight + 8, label, INK, scale);
  }
  canvas.fillRect(x(1) - 1, top - 8, 3, ratios.length * rowHeight + 8, INK);
  ratios.forEach((goal, index) => {
    const y = top + index * rowHeight;
    canvas.text(16, y + 14, goal.label, INK, scale);
    const from = Math.min(x(1), x(goal.value));
    const to = Math.max(x(1), x(goal.value));
    canvas.fillRect(from, y + 8, Math.max(2, to - from), rowHeight - 16, goal.met ? MET : MISSED);
    canvas.fillRect(x(goal.limit) - 2, y + 2, 4, rowHeight - 4, TARGET);
    canvas.text(labelWidth + plotWidth + 12, y + 14, `${goal.value.toFixed(2)}×`, INK, scale);
  });
  const legendY = top + ratios.length * rowHeight + 36;
  canvas.text(16, legendY, 'each bar: the ratio its label names, log scale, from 1×. green: met, red: missed. blue: target.', INK, scale);
  return canvas.toPng();
}
