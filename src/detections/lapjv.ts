/**
 * Linear assignment by the Jonker-Volgenant algorithm (R. Jonker, A. Volgenant, "A shortest
 * augmenting path algorithm for dense and sparse linear assignment problems", Computing 38, 1987),
 * in the dense form used by the `lap` package and by ByteTrack's C++ deployment: column reduction
 * with reduction transfer, two rounds of augmenting row reduction, then shortest augmenting paths.
 * The phases visit rows and columns in the same order as that implementation, so ties (frequent in
 * padded tracking matrices, where many entries equal the cost limit / 2) resolve the same way.
 *
 * `assignWithLimit` is ByteTrack's matching: the rows x cols cost matrix is padded to a square of
 * side rows + cols, the extra entries set to limit / 2 (and 0 in the corner), and solved as one
 * problem. A pair costing more than the limit is then never chosen, because leaving both sides
 * unmatched costs limit / 2 + limit / 2. This is not the same as solving the unpadded problem and
 * then discarding pairs above the limit: the padded optimum can prefer other pairs altogether.
 */

const LARGE = 1000000;

/** Reusable workspace for square assignment problems; grows to the largest size seen. */
export class LapjvSolver {
  private size = 0;
  /** x[i]: column of row i; y[j]: row of column j (after solve()). */
  x = new Int32Array(0);
  y = new Int32Array(0);
  private v = new Float64Array(0);
  private d = new Float64Array(0);
  private free = new Int32Array(0);
  private cols = new Int32Array(0);
  private pred = new Int32Array(0);
  private unique = new Uint8Array(0);
  private padded = new Float64Array(0);

  private ensure(n: number): void {
    if (n <= this.size) return;
    this.size = n;
    this.x = new Int32Array(n);
    this.y = new Int32Array(n);
    this.v = new Float64Array(n);
    this.d = new Float64Array(n);
    this.free = new Int32Array(n);
    this.cols = new Int32Array(n);
    this.pred = new Int32Array(n);
    this.unique = new Uint8Array(n);
  }

  /** Solves the n x n problem `cost` (row-major); the assignment is in x and y. */
  solve(cost: Float64Array, n: number): void {
    if (cost.length < n * n) throw new RangeError(`LapjvSolver.solve: ${n}x${n} needs ${n * n} costs, got ${cost.length}`);
    this.ensure(n);
    if (n === 0) return;
    let nFree = this.reduceColumns(cost, n);
    for (let round = 0; round < 2 && nFree > 0; round++) nFree = this.reduceRows(cost, n, nFree);
    if (nFree > 0) this.augment(cost, n, nFree);
  }

  /** Column reduction and reduction transfer; returns the number of free rows (listed in `free`). */
  private reduceColumns(cost: Float64Array, n: number): number {
    const { x, y, v, free, unique } = this;
    // Each column's minimum and the first row reaching it (column by column: the matrices are small
    // enough for the cache, and the running minimum stays in a register).
    for (let j = 0; j < n; j++) {
      let min = LARGE;
      let arg = 0;
      for (let i = 0, o = j; i < n; i++, o += n) {
        const c = cost[o]!;
        if (c < min) {
          min = c;
          arg = i;
        }
      }
      v[j] = min;
      y[j] = arg;
      x[j] = -1;
    }
    // Columns from last to first claim their row; a row claimed twice keeps the later-visited claim
    // (lower column) only once and loses uniqueness.
    unique.fill(1, 0, n);
    for (let j = n - 1; j >= 0; j--) {
      const i = y[j]!;
      if (x[i]! < 0) x[i] = j;
      else {
        unique[i] = 0;
        y[j] = -1;
      }
    }
    let nFree = 0;
    for (let i = 0; i < n; i++) {
      if (x[i]! < 0) free[nFree++] = i;
      else if (unique[i]) {
        // Reduction transfer: lower the assigned column's price by the row's second-best margin.
        const j = x[i]!;
        let min = LARGE;
        const row = i * n;
        for (let j2 = 0; j2 < n; j2++) {
          if (j2 === j) continue;
          const c = cost[row + j2]! - v[j2]!;
          if (c < min) min = c;
        }
        v[j] = v[j]! - min;
      }
    }
    return nFree;
  }

  /** One round of augmenting row reduction over the free rows; returns the rows still free. */
  private reduceRows(cost: Float64Array, n: number, nFree: number): number {
    const { x, y, v, free } = this;
    let current = 0;
    let newFree = 0;
    let visits = 0;
    while (current < nFree) {
      visits++;
      const fi = free[current++]!;
      const row = fi * n;
      // Best and second-best reduced cost of the row.
      let j1 = 0;
      let u1 = cost[row]! - v[0]!;
      let j2 = -1;
      let u2 = LARGE;
      for (let j = 1; j < n; j++) {
        const c = cost[row + j]! - v[j]!;
        if (c < u2) {
          if (c >= u1) {
            u2 = c;
            j2 = j;
          } else {
            u2 = u1;
            u1 = c;
            j2 = j1;
            j1 = j;
          }
        }
      }
      let i0 = y[j1]!;
      const lowered = v[j1]! - (u2 - u1);
      const lowers = lowered < v[j1]!;
      if (visits < current * n) {
        if (lowers) v[j1] = lowered;
        else if (i0 >= 0 && j2 >= 0) {
          j1 = j2;
          i0 = y[j2]!;
        }
        if (i0 >= 0) {
          if (lowers) free[--current] = i0;
          else free[newFree++] = i0;
        }
      } else if (i0 >= 0) {
        free[newFree++] = i0;
      }
      x[fi] = j1;
      y[j1] = fi;
    }
    return newFree;
  }

  /** Shortest augmenting paths from each remaining free row. */
  private augment(cost: Float64Array, n: number, nFree: number): void {
    const { x, y, free, pred } = this;
    for (let f = 0; f < nFree; f++) {
      const start = free[f]!;
      let j = this.shortestPath(cost, n, start);
      if (j < 0 || j >= n) throw new Error(`lapjv: no augmenting path from row ${start}`);
      let i = -1;
      let steps = 0;
      while (i !== start) {
        i = pred[j]!;
        y[j] = i;
        const t = x[i]!;
        x[i] = j;
        j = t;
        if (++steps >= n) throw new Error("lapjv: augmenting path does not end");
      }
    }
  }

  /** Dijkstra over reduced costs from row `start`; returns the free column reached, updating prices. */
  private shortestPath(cost: Float64Array, n: number, start: number): number {
    const { y, v, d, cols, pred } = this;
    let lo = 0;
    let hi = 0;
    let nReady = 0;
    let last = -1;
    const srow = start * n;
    for (let k = 0; k < n; k++) {
      cols[k] = k;
      pred[k] = start;
      d[k] = cost[srow + k]! - v[k]!;
    }
    while (last === -1) {
      if (lo === hi) {
        // Move the columns at the current minimum distance to the front (the SCAN set).
        nReady = lo;
        hi = lo + 1;
        let mind = d[cols[lo]!]!;
        for (let k = hi; k < n; k++) {
          const j = cols[k]!;
          const dj = d[j]!;
          if (dj <= mind) {
            if (dj < mind) {
              hi = lo;
              mind = dj;
            }
            cols[k] = cols[hi]!;
            cols[hi++] = j;
          }
        }
        for (let k = lo; k < hi; k++) {
          const j = cols[k]!;
          if (y[j]! < 0) last = j; // the last free one in the set wins
        }
      }
      if (last === -1) {
        // Scan: relax the remaining columns through each SCAN column's assigned row. On reaching a
        // free column at the minimum distance the search ends at once, leaving lo/hi as they were.
        let l = lo;
        let h = hi;
        let found = -1;
        scan: while (l !== h) {
          const j0 = cols[l++]!;
          const i = y[j0]!;
          const mind = d[j0]!;
          const row = i * n;
          const base = cost[row + j0]! - v[j0]! - mind;
          for (let k = h; k < n; k++) {
            const j = cols[k]!;
            const red = cost[row + j]! - v[j]! - base;
            if (red < d[j]!) {
              d[j] = red;
              pred[j] = i;
              if (red === mind) {
                if (y[j]! < 0) {
                  found = j;
                  break scan;
                }
                cols[k] = cols[h]!;
                cols[h++] = j;
              }
            }
          }
        }
        if (found === -1) {
          lo = l;
          hi = h;
        }
        last = found;
      }
    }
    const mind = d[cols[lo]!]!;
    for (let k = 0; k < nReady; k++) {
      const j = cols[k]!;
      v[j] = v[j]! + d[j]! - mind;
    }
    return last;
  }

  /**
   * ByteTrack's matching: assigns rows to columns of a rows x cols cost matrix (row-major), a pair
   * only when that is cheaper than leaving both unmatched at limit / 2 each. Writes rowMatch[i]
   * (column or -1) and colMatch[j] (row or -1).
   */
  assignWithLimit(cost: ArrayLike<number>, rows: number, cols: number, limit: number, rowMatch: Int32Array, colMatch: Int32Array): void {
    if (rows === 0 || cols === 0) {
      rowMatch.fill(-1, 0, rows);
      colMatch.fill(-1, 0, cols);
      return;
    }
    const n = rows + cols;
    if (this.padded.length < n * n) this.padded = new Float64Array(n * n);
    const m = this.padded;
    const half = limit / 2;
    for (let i = 0; i < rows; i++) {
      const r = i * n;
      for (let j = 0; j < cols; j++) m[r + j] = cost[i * cols + j]!;
      m.fill(half, r + cols, r + n);
    }
    for (let i = rows; i < n; i++) {
      const r = i * n;
      m.fill(half, r, r + cols);
      m.fill(0, r + cols, r + n);
    }
    this.solve(m, n);
    for (let i = 0; i < rows; i++) {
      const j = this.x[i]!;
      rowMatch[i] = j < cols ? j : -1;
    }
    for (let j = 0; j < cols; j++) {
      const i = this.y[j]!;
      colMatch[j] = i < rows ? i : -1;
    }
  }
}
