/**
 * The hot loop of YOLO decoding: which of N anchors have a class score above the confidence
 * threshold, and for those, the best class and its score. The raw output is [4 + nc, N], one row per
 * class, so this reads nc x N floats (672,000 for 8400 anchors x 80 classes) per frame while only a
 * few dozen anchors pass. Plain JavaScript takes 1-2 ns per float here (over 1 ms per frame at 8400
 * anchors, several times onnxruntime's own NonMaxSuppression); a small WebAssembly module using
 * 128-bit SIMD handles four per instruction, so it is used when the runtime offers WebAssembly SIMD
 * (Node >= 16.4 does), with the JavaScript path as fallback and as the reference in the tests.
 *
 * What remains is mostly the copy of the class rows into WebAssembly memory (it cannot read the
 * caller's array in place); rows are copied with one memmove each and folded into a running
 * maximum 16 rows at a time while they are still in cache.
 *
 * The module is assembled below from its instructions (src/wasm/assemble.ts).
 * The class rows are copied into WebAssembly memory, each padded to a multiple of 16 anchors with
 * -Infinity, a few rows at a time, and anchors are processed 16 at a time (a "block"):
 *   maxrows: after each copy, the lane-wise running maximum over the rows copied so far;
 *   maskmax: the maximum compared with the threshold: a 16-bit mask per block, one bit per anchor;
 *   argmax:  for blocks with a non-zero mask only, the lane-wise best score and the index of the
 *            first class reaching it (ties keep the lower class index, as torch.max does).
 */

import { compileModule, F32, I32, instantiate, moduleBytes, op, uleb, V128, vec, type WasmMemory } from "../wasm/assemble.js";

/**
 * maxrows(src, nblocks, nrows, strideBytes, maxp, accumulate): for each block of 16 anchors, the
 * lane-wise maximum over `nrows` rows (rows `strideBytes` apart) is stored at maxp; with
 * `accumulate` the maximum already at maxp takes part, otherwise it is overwritten.
 */
function maxrowsBody(): number[] {
  const [SRC, NB, NR, STRIDE, MAXP, ACC] = [0, 1, 2, 3, 4, 5];
  const [B, P, R, Q, A0, A1, A2, A3] = [6, 7, 8, 9, 10, 11, 12, 13];
  const locals = vec([[4, I32], [4, V128]].map(([n, t]) => [...uleb(n!), t!]));
  const acc = [A0, A1, A2, A3];
  const code: number[] = [
    ...op.block, ...op.loop,
    ...op.get(B), ...op.get(NB), ...op.i32GeU, ...op.brIf(1),
    ...op.get(SRC), ...op.get(B), ...op.i32(6), ...op.i32Shl, ...op.i32Add, ...op.set(P),
    ...op.get(MAXP), ...op.get(B), ...op.i32(6), ...op.i32Shl, ...op.i32Add, ...op.set(Q),
    ...op.get(ACC), ...op.if,
    // start from the stored maximum, then every row
    ...acc.flatMap((a, k) => [...op.get(Q), ...op.v128Load(16 * k), ...op.set(a)]),
    ...op.i32(0), ...op.set(R),
    ...op.else,
    // start from the first row, then the others
    ...acc.flatMap((a, k) => [...op.get(P), ...op.v128Load(16 * k), ...op.set(a)]),
    ...op.get(P), ...op.get(STRIDE), ...op.i32Add, ...op.set(P),
    ...op.i32(1), ...op.set(R),
    ...op.end,
    ...op.block, ...op.loop,
    ...op.get(R), ...op.get(NR), ...op.i32GeU, ...op.brIf(1),
    ...acc.flatMap((a, k) => [...op.get(a), ...op.get(P), ...op.v128Load(16 * k), ...op.f32x4Pmax, ...op.set(a)]),
    ...op.get(P), ...op.get(STRIDE), ...op.i32Add, ...op.set(P),
    ...op.inc(R, 1),
    ...op.loopEnd,
    ...acc.flatMap((a, k) => [...op.get(Q), ...op.get(a), ...op.v128Store(16 * k)]),
    ...op.inc(B, 1),
    ...op.loopEnd,
    ...op.end,
  ];
  return [...locals, ...code];
}

/** maskmax(maxp, nblocks, threshold, maskOut) -> blocks with a non-zero mask: bit k of mask[b] = max[16b + k] > threshold */
function maskmaxBody(): number[] {
  const [MAXP, NB, THR, MASK] = [0, 1, 2, 3];
  const [B, Q, M, COUNT, T] = [4, 5, 6, 7, 8];
  const locals = vec([[4, I32], [1, V128]].map(([n, t]) => [...uleb(n!), t!]));
  const code: number[] = [
    ...op.get(THR), ...op.f32x4Splat, ...op.set(T),
    ...op.block, ...op.loop,
    ...op.get(B), ...op.get(NB), ...op.i32GeU, ...op.brIf(1),
    ...op.get(MAXP), ...op.get(B), ...op.i32(6), ...op.i32Shl, ...op.i32Add, ...op.set(Q),
    ...[0, 1, 2, 3].flatMap((k) => [
      ...op.get(Q), ...op.v128Load(16 * k), ...op.get(T), ...op.f32x4Gt, ...op.i32x4Bitmask,
      ...(k > 0 ? [...op.i32(4 * k), ...op.i32Shl, ...op.i32Or] : []),
    ]),
    ...op.set(M),
    ...op.get(MASK), ...op.get(B), ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.get(M), ...op.i32Store,
    ...op.get(COUNT), ...op.get(M), ...op.i32(0), ...op.i32Ne, ...op.i32Add, ...op.set(COUNT),
    ...op.inc(B, 1),
    ...op.loopEnd,
    ...op.get(COUNT),
    ...op.end,
  ];
  return [...locals, ...code];
}

/** argmax(src, nblocks, nc, strideBytes, maskIn, bestOut, clsOut): per anchor of flagged blocks */
function argmaxBody(): number[] {
  const [SRC, NB, NC, STRIDE, MASK, BEST, CLS] = [0, 1, 2, 3, 4, 5, 6];
  const [B, P, C, O] = [7, 8, 9, 10];
  const [B0, B1, B2, B3, K0, K1, K2, K3, CV, ONE, V, G] = [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22];
  const locals = vec([[4, I32], [12, V128]].map(([n, t]) => [...uleb(n!), t!]));
  const best = [B0, B1, B2, B3];
  const cls = [K0, K1, K2, K3];
  const code: number[] = [
    ...op.i32(1), ...op.i32x4Splat, ...op.set(ONE),
    ...op.block, ...op.loop,
    ...op.get(B), ...op.get(NB), ...op.i32GeU, ...op.brIf(1),
    ...op.block,
    // skip blocks whose mask is 0
    ...op.get(MASK), ...op.get(B), ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.i32Load, ...op.i32Eqz, ...op.brIf(0),
    ...op.get(B), ...op.i32(6), ...op.i32Shl, ...op.set(O),
    ...op.get(SRC), ...op.get(O), ...op.i32Add, ...op.set(P),
    ...best.flatMap((b, k) => [...op.get(P), ...op.v128Load(16 * k), ...op.set(b)]),
    ...cls.flatMap((c) => [...op.i32(0), ...op.i32x4Splat, ...op.set(c)]),
    ...op.i32(0), ...op.i32x4Splat, ...op.set(CV),
    ...op.i32(1), ...op.set(C),
    ...op.block, ...op.loop,
    ...op.get(C), ...op.get(NC), ...op.i32GeU, ...op.brIf(1),
    ...op.get(P), ...op.get(STRIDE), ...op.i32Add, ...op.set(P),
    ...op.get(CV), ...op.get(ONE), ...op.i32x4Add, ...op.set(CV),
    ...[0, 1, 2, 3].flatMap((k) => [
      ...op.get(P), ...op.v128Load(16 * k), ...op.set(V),
      ...op.get(V), ...op.get(best[k]!), ...op.f32x4Gt, ...op.set(G),
      ...op.get(V), ...op.get(best[k]!), ...op.get(G), ...op.bitselect, ...op.set(best[k]!),
      ...op.get(CV), ...op.get(cls[k]!), ...op.get(G), ...op.bitselect, ...op.set(cls[k]!),
    ]),
    ...op.inc(C, 1),
    ...op.loopEnd,
    ...[0, 1, 2, 3].flatMap((k) => [
      ...op.get(BEST), ...op.get(O), ...op.i32Add, ...op.get(best[k]!), ...op.v128Store(16 * k),
      ...op.get(CLS), ...op.get(O), ...op.i32Add, ...op.get(cls[k]!), ...op.v128Store(16 * k),
    ]),
    ...op.end,
    ...op.inc(B, 1),
    ...op.loopEnd,
    ...op.end,
  ];
  return [...locals, ...code];
}

// ---- the scanner -------------------------------------------------------------------------------

/** Class rows copied and folded into the running maximum per pass (measured best among 2, 4, 8, 16). */
const RING_ROWS = 8;

interface Kernels {
  maxrows(src: number, nblocks: number, nrows: number, stride: number, maxp: number, accumulate: number): void;
  maskmax(maxp: number, nblocks: number, thr: number, mask: number): number;
  argmax(src: number, nblocks: number, nc: number, stride: number, mask: number, best: number, cls: number): void;
}

let compiled: object | null | undefined;

function wasmModule(): object | null {
  if (compiled === undefined) {
    compiled = compileModule(
      moduleBytes([
        { name: "maxrows", params: [I32, I32, I32, I32, I32, I32], results: [], body: maxrowsBody() },
        { name: "maskmax", params: [I32, I32, F32, I32], results: [I32], body: maskmaxBody() },
        { name: "argmax", params: [I32, I32, I32, I32, I32, I32, I32], results: [], body: argmaxBody() },
      ]),
    );
  }
  return compiled;
}

/** Whether the SIMD kernels are available in this runtime. */
export function simdAvailable(): boolean {
  return wasmModule() !== null;
}

/**
 * Finds anchors whose best class score exceeds a threshold in a [4 + nc, N] YOLO output.
 * Holds WebAssembly memory that grows to the largest output seen; reuse one per decoder.
 */
export class ScoreScanner {
  private memory: WasmMemory | null = null;
  private layout = -1;
  private kernels: Kernels | null = null;
  /** Anchor indices, best scores and best classes of the last scan; `count` entries are valid. */
  anchors = new Int32Array(0);
  bestScores = new Float32Array(0);
  bestClasses = new Int32Array(0);
  count = 0;

  constructor(readonly useSimd = simdAvailable()) {
    const mod = useSimd ? wasmModule() : null;
    if (mod) ({ memory: this.memory, exports: this.kernels } = instantiate<Kernels>(mod));
  }

  private ensureResults(n: number): void {
    if (this.anchors.length < n) {
      const cap = Math.max(n, 2 * this.anchors.length, 64);
      const [a, s, c] = [this.anchors, this.bestScores, this.bestClasses];
      this.anchors = new Int32Array(cap);
      this.bestScores = new Float32Array(cap);
      this.bestClasses = new Int32Array(cap);
      this.anchors.set(a);
      this.bestScores.set(s);
      this.bestClasses.set(c);
    }
  }

  private push(anchor: number, score: number, cls: number): void {
    if (this.count === this.anchors.length) this.ensureResults(this.count + 1);
    this.anchors[this.count] = anchor;
    this.bestScores[this.count] = score;
    this.bestClasses[this.count] = cls;
    this.count++;
  }

  /**
   * Scans rows 4..4+nc-1 of `output` ([4 + nc + extra, n], row-major). Afterwards `count` anchors,
   * in ascending anchor order, have a best score strictly above `threshold`.
   */
  scan(output: Float32Array, nc: number, n: number, threshold: number): number {
    this.count = 0;
    if (n === 0 || nc === 0) return 0;
    // Scores are float32 and compared in float32, as torch compares a float32 tensor with a Python float.
    threshold = Math.fround(threshold);
    if (this.kernels) this.scanSimd(output, nc, n, threshold);
    else this.scanJs(output, nc, n, threshold);
    return this.count;
  }

  private scanJs(output: Float32Array, nc: number, n: number, threshold: number): void {
    // Pass 1, class-major (contiguous reads): flag anchors with any score above the threshold.
    const flags = new Uint8Array(n);
    for (let c = 0; c < nc; c++) {
      const off = (4 + c) * n;
      for (let i = 0; i < n; i++) if (output[off + i]! > threshold) flags[i] = 1;
    }
    // Pass 2, flagged anchors only: best class (first on ties).
    for (let i = 0; i < n; i++) {
      if (!flags[i]) continue;
      let best = output[4 * n + i]!;
      let cls = 0;
      for (let c = 1; c < nc; c++) {
        const v = output[(4 + c) * n + i]!;
        if (v > best) {
          best = v;
          cls = c;
        }
      }
      this.push(i, best, cls);
    }
  }

  private scanSimd(output: Float32Array, nc: number, n: number, threshold: number): void {
    const kernels = this.kernels!;
    // Memory layout: a ring of RING_ROWS class rows of `padded` floats each (n values, then
    // -Infinity up to a multiple of 16), the running maximum per anchor, and the block masks. It
    // stays small enough for the CPU's L2 cache, so the output is read from memory once and
    // nothing is written back to it.
    const padded = Math.ceil(n / 16) * 16;
    const nblocks = padded / 16;
    const rowBytes = padded * 4;
    const maxOff = RING_ROWS * rowBytes;
    const maskOff = maxOff + rowBytes;
    const total = maskOff + nblocks * 4;
    const mem = this.memory!;
    if (mem.buffer.byteLength < total) {
      mem.grow(Math.ceil((total - mem.buffer.byteLength) / 65536));
      this.layout = -1;
    }
    if (this.layout !== n) {
      // Copies only ever write the first n values of a row: the padding is set once per layout.
      const f = new Float32Array(mem.buffer);
      if (padded > n) for (let r = 0; r < RING_ROWS; r++) f.fill(-Infinity, r * padded + n, (r + 1) * padded);
      this.layout = n;
    }
    // Rows are copied a few at a time (one memmove each: sequential reads are what memory serves
    // best) and folded into the running maximum while they are in cache.
    const from = Buffer.from(output.buffer, output.byteOffset, output.byteLength);
    const to = Buffer.from(mem.buffer);
    for (let c0 = 0; c0 < nc; c0 += RING_ROWS) {
      const rows = Math.min(RING_ROWS, nc - c0);
      for (let r = 0; r < rows; r++) from.copy(to, r * rowBytes, (4 + c0 + r) * n * 4, (5 + c0 + r) * n * 4);
      kernels.maxrows(0, nblocks, rows, rowBytes, maxOff, c0 === 0 ? 0 : 1);
    }
    const flagged = kernels.maskmax(maxOff, nblocks, threshold, maskOff);
    if (flagged === 0) return;
    // The best class of the few flagged anchors, read from the output itself (first maximum wins).
    const masks = new Int32Array(mem.buffer, maskOff, nblocks);
    const base = 4 * n;
    for (let b = 0; b < nblocks; b++) {
      let m = masks[b]!;
      while (m !== 0) {
        const bit = 31 - Math.clz32(m & -m);
        m &= m - 1;
        const i = b * 16 + bit;
        let best = output[base + i]!;
        let cls = 0;
        for (let c = 1, o = base + n + i; c < nc; c++, o += n) {
          const v = output[o]!;
          if (v > best) {
            best = v;
            cls = c;
          }
        }
        this.push(i, best, cls);
      }
    }
  }
}
