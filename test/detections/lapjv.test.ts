import assert from "node:assert/strict";
import { test } from "node:test";
import { LapjvSolver } from "../../src/detections/lapjv.js";
import { KalmanFilterXyah } from "../../src/detections/kalman-filter.js";

function permutations(n: number): number[][] {
  if (n === 0) return [[]];
  return permutations(n - 1).flatMap((p) => Array.from({ length: n }, (_, k) => [...p.slice(0, k), n - 1, ...p.slice(k)]));
}

test("LAPJV finds an optimal assignment (checked by enumeration on random 1..6 x 1..6 matrices)", () => {
  let seed = 7;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const solver = new LapjvSolver();
  for (let trial = 0; trial < 300; trial++) {
    const n = 1 + (trial % 6);
    const cost = Float64Array.from({ length: n * n }, () => (trial % 3 === 0 ? Math.round(rand() * 4) / 4 : rand()));
    solver.solve(cost, n);
    const x = [...solver.x.subarray(0, n)];
    assert.deepEqual([...x].sort(), Array.from({ length: n }, (_, i) => i), "a permutation");
    for (let i = 0; i < n; i++) assert.equal(solver.y[x[i]!], i);
    const total = x.reduce((s, j, i) => s + cost[i * n + j]!, 0);
    const best = Math.min(...permutations(n).map((p) => p.reduce((s, j, i) => s + cost[i * n + j]!, 0)));
    assert.ok(Math.abs(total - best) < 1e-9, `trial ${trial}: ${total} vs optimum ${best}`);
  }
});

test("assignment with a cost limit on the padded matrix differs from solving then cutting", () => {
  // Unpadded optimum: (0,1) + (1,0) = 1.0 < (0,0) + (1,1) = 1.05, both pairs under the limit 0.8.
  // Padded: (0,0) alone plus two unmatched (0.4 + 0.4) costs 0.9 < 1.0, so only (0,0) is matched.
  const cost = Float64Array.of(0.1, 0.5, 0.5, 0.95);
  const rows = new Int32Array(2);
  const cols = new Int32Array(2);
  const s = new LapjvSolver();
  s.assignWithLimit(cost, 2, 2, 0.8, rows, cols);
  assert.deepEqual([...rows], [0, -1]);
  assert.deepEqual([...cols], [0, -1]);
  s.solve(cost, 2);
  assert.deepEqual([...s.x.subarray(0, 2)], [1, 0]);
});

test("assignment with a cost limit: empty sides and rectangular matrices", () => {
  const s = new LapjvSolver();
  const rows = new Int32Array(3).fill(9);
  const cols = new Int32Array(2).fill(9);
  s.assignWithLimit(new Float64Array(0), 3, 0, 0.8, rows, cols);
  assert.deepEqual([...rows], [-1, -1, -1]);
  // 3 tracks x 2 detections: track 2 takes detection 0, track 0 detection 1 (cost 0.85 > limit: no).
  s.assignWithLimit(Float64Array.of(0.9, 0.85, 1, 1, 0.2, 1), 3, 2, 0.8, rows, cols);
  assert.deepEqual([...rows], [-1, -1, 0]);
  assert.deepEqual([...cols], [2, -1]);
});

test("Kalman filter: predict and update agree with the dense matrix formulas", () => {
  const kf = new KalmanFilterXyah();
  const mean = new Float64Array(8);
  const cov = new Float64Array(64);
  kf.initiate([100, 200, 0.5, 80], mean, cov);
  assert.deepEqual([...mean], [100, 200, 0.5, 80, 0, 0, 0, 0]);
  assert.ok(Math.abs(cov[0]! - (2 * (1 / 20) * 80) ** 2) < 1e-12 && Math.abs(cov[4 * 9]! - (10 * (1 / 160) * 80) ** 2) < 1e-12);
  // Reference: plain dense products.
  const F: number[][] = Array.from({ length: 8 }, (_, i) => Array.from({ length: 8 }, (_, j) => (i === j || j === i + 4 ? 1 : 0)));
  const mul = (A: number[][], B: number[][]) => A.map((r) => B[0]!.map((_, j) => r.reduce((s, v, k) => s + v * B[k]![j]!, 0)));
  const T = (A: number[][]) => A[0]!.map((_, j) => A.map((r) => r[j]!));
  const toM = (a: Float64Array) => Array.from({ length: 8 }, (_, i) => [...a.subarray(i * 8, i * 8 + 8)]);
  let m = [...mean];
  let P = toM(cov);
  const steps: [number, number, number, number][] = [[103, 198, 0.52, 82], [106, 197, 0.5, 83], [110, 195, 0.49, 85]];
  for (const z of steps) {
    const h = m[3]!;
    const q = [h / 20, h / 20, 1e-2, h / 20, h / 160, h / 160, 1e-5, h / 160].map((s) => s * s);
    m = F.map((r) => r.reduce((s, v, k) => s + v * m[k]!, 0));
    P = mul(mul(F, P), T(F)).map((r, i) => r.map((v, j) => v + (i === j ? q[i]! : 0)));
    kf.predict(mean, cov);
    const h2 = m[3]!;
    const R = [h2 / 20, h2 / 20, 1e-1, h2 / 20].map((s) => s * s);
    const S = P.slice(0, 4).map((r, i) => r.slice(0, 4).map((v, j) => v + (i === j ? R[i]! : 0)));
    // 4x4 inverse by Gauss-Jordan.
    const inv = (A: number[][]) => {
      const n = A.length;
      const M = A.map((r, i) => [...r, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
      for (let c = 0; c < n; c++) {
        const p = M[c]![c]!;
        M[c] = M[c]!.map((v) => v / p);
        for (let r = 0; r < n; r++) if (r !== c) M[r] = M[r]!.map((v, j) => v - M[r]![c]! * M[c]![j]!);
      }
      return M.map((r) => r.slice(n));
    };
    const PHt = P.map((r) => r.slice(0, 4));
    const K = mul(PHt, inv(S));
    const innov = z.map((v, k) => v - m[k]!);
    m = m.map((v, i) => v + K[i]!.reduce((s, kv, k) => s + kv * innov[k]!, 0));
    P = P.map((r, i) => r.map((v, j) => v - K[i]!.reduce((s, kv, k) => s + kv * PHt[j]![k]!, 0)));
    kf.update(mean, cov, z);
    m.forEach((v, i) => assert.ok(Math.abs(v - mean[i]!) < 1e-9 * Math.max(1, Math.abs(v)), `mean[${i}] ${mean[i]} vs ${v}`));
    P.flat().forEach((v, i) => assert.ok(Math.abs(v - cov[i]!) < 1e-9 * Math.max(1, Math.abs(v)), `cov[${i}] ${cov[i]} vs ${v}`));
  }
});
