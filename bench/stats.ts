import { percentile as percentileOfSorted } from "../src/pipeline/stats.js";

/** The p-th percentile (0-100) of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  return percentileOfSorted(Float64Array.from(samples).sort(), p);
}

/** Prints rows of the same keys as an aligned text table. */
export function printTable(rows: readonly Record<string, unknown>[]): void {
  if (rows.length === 0) return;
  const keys = Object.keys(rows[0]!);
  const cells = [keys, ...rows.map((r) => keys.map((k) => String(r[k])))];
  const widths = keys.map((_, i) => Math.max(...cells.map((c) => c[i]!.length)));
  for (const c of cells) console.log(c.map((v, i) => v.padStart(widths[i]!)).join("  "));
}
