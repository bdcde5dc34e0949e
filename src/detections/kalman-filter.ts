/** The box state of the filter: centre, aspect ratio and height (SORT, ByteTrack) or centre, width and height (BoT-SORT). */
export type KalmanForm = "xyah" | "xywh";

/**
 * The constant-velocity Kalman filter of SORT/DeepSORT/ByteTrack on the box state
 * (cx, cy, a, h, vcx, vcy, va, vh): centre, aspect ratio w/h, height, and their velocities, one
 * frame per step. Noise is proportional to the box height, with ByteTrack's weights: position 1/20,
 * velocity 1/160; the aspect ratio has fixed small noise (1e-2, velocity 1e-5, measurement 1e-1).
 * With form "xywh" (BoT-SORT's) the state is (cx, cy, w, h, ...) and the noise of x and w is
 * proportional to the width, that of y and h to the height: the width then follows a change of shape
 * (a person walking in from the edge) within a few frames instead of lagging behind for seconds.
 *
 * Mean and covariance live in caller-owned Float64Arrays (8 and 64 values, row-major) so a tracker
 * keeps one pair per track and nothing is allocated per frame. The motion matrix is [[I, I], [0, I]],
 * the measurement matrix [I, 0]; the products with them are written out by 4x4 blocks.
 */
export class KalmanFilterXyah {
  // Scratch for update(), kept to allocate nothing per call.
  private readonly K = new Float64Array(32);
  private readonly PHt = new Float64Array(32);

  constructor(
    readonly stdWeightPosition = 1 / 20,
    readonly stdWeightVelocity = 1 / 160,
    readonly form: KalmanForm = "xyah",
  ) {}

  /** The scale of each state component's noise: [x, y, a or w, h] (the aspect ratio's is fixed: 0). */
  private scales(mean: ArrayLike<number>): [number, number, number, number] {
    const h = mean[3]!;
    if (this.form === "xyah") return [h, h, 0, h];
    const w = mean[2]!;
    return [w, h, w, h];
  }

  /** A new track from a measurement (cx, cy, a, h) or (cx, cy, w, h): zero velocity, wide uncertainty. */
  initiate(z: ArrayLike<number>, mean: Float64Array, cov: Float64Array): void {
    const wp = this.stdWeightPosition;
    const wv = this.stdWeightVelocity;
    for (let k = 0; k < 4; k++) mean[k] = z[k]!;
    mean[4] = mean[5] = mean[6] = mean[7] = 0;
    const [sx, sy, sa, sh] = this.scales(z);
    const xyah = this.form === "xyah";
    const std = [2 * wp * sx, 2 * wp * sy, xyah ? 1e-2 : 2 * wp * sa, 2 * wp * sh, 10 * wv * sx, 10 * wv * sy, xyah ? 1e-5 : 10 * wv * sa, 10 * wv * sh];
    cov.fill(0);
    for (let k = 0; k < 8; k++) cov[k * 9] = std[k]! * std[k]!;
  }

  /** One step ahead: x = F x, P = F P F^T + Q, with Q from the height before the step. */
  predict(mean: Float64Array, cov: Float64Array): void {
    const [sx, sy, sa, sh] = this.scales(mean);
    const xyah = this.form === "xyah";
    const wp = this.stdWeightPosition;
    const wv = this.stdWeightVelocity;
    const q = xyah
      ? [(wp * sx) ** 2, (wp * sy) ** 2, 1e-4, (wp * sh) ** 2, (wv * sx) ** 2, (wv * sy) ** 2, 1e-10, (wv * sh) ** 2]
      : [(wp * sx) ** 2, (wp * sy) ** 2, (wp * sa) ** 2, (wp * sh) ** 2, (wv * sx) ** 2, (wv * sy) ** 2, (wv * sa) ** 2, (wv * sh) ** 2];
    for (let k = 0; k < 4; k++) mean[k] = mean[k]! + mean[k + 4]!;
    // P = [[A, B], [C, D]] (C = B^T): F P F^T = [[A + B + C + D, B + D], [C + D, D]].
    for (let i = 0; i < 4; i++) {
      for (let j = 0; j < 4; j++) {
        const a = cov[i * 8 + j]!;
        const b = cov[i * 8 + j + 4]!;
        const c = cov[(i + 4) * 8 + j]!;
        const d = cov[(i + 4) * 8 + j + 4]!;
        cov[i * 8 + j] = a + b + c + d;
        cov[i * 8 + j + 4] = b + d;
        cov[(i + 4) * 8 + j] = c + d;
      }
    }
    for (let k = 0; k < 8; k++) cov[k * 9] = cov[k * 9]! + q[k]!;
  }

  /**
   * Corrects the state with a measurement (cx, cy, a, h): S = H P H^T + R, K = P H^T S^-1,
   * x += K (z - H x), P -= K S K^T (= K (P H^T)^T). S is factored by Cholesky (S = L L^T) and each
   * row of K solved by forward and back substitution, written out for the 4x4 case.
   */
  update(mean: Float64Array, cov: Float64Array, z: ArrayLike<number>): void {
    const [sx, sy, sa, sh] = this.scales(mean);
    const wp = this.stdWeightPosition;
    const r = [(wp * sx) ** 2, (wp * sy) ** 2, this.form === "xyah" ? 1e-2 : (wp * sa) ** 2, (wp * sh) ** 2];
    const { K, PHt } = this;
    for (let row = 0; row < 8; row++) {
      const o = row * 8;
      PHt[row * 4] = cov[o]!;
      PHt[row * 4 + 1] = cov[o + 1]!;
      PHt[row * 4 + 2] = cov[o + 2]!;
      PHt[row * 4 + 3] = cov[o + 3]!;
    }
    const s00 = cov[0]! + r[0]!;
    const s10 = cov[8]!;
    const s11 = cov[9]! + r[1]!;
    const s20 = cov[16]!;
    const s21 = cov[17]!;
    const s22 = cov[18]! + r[2]!;
    const s30 = cov[24]!;
    const s31 = cov[25]!;
    const s32 = cov[26]!;
    const s33 = cov[27]! + r[3]!;
    const l00 = Math.sqrt(s00);
    const l10 = s10 / l00;
    const l20 = s20 / l00;
    const l30 = s30 / l00;
    const l11 = Math.sqrt(s11 - l10 * l10);
    const l21 = (s21 - l20 * l10) / l11;
    const l31 = (s31 - l30 * l10) / l11;
    const l22 = Math.sqrt(s22 - l20 * l20 - l21 * l21);
    const l32 = (s32 - l30 * l20 - l31 * l21) / l22;
    const l33 = Math.sqrt(s33 - l30 * l30 - l31 * l31 - l32 * l32);
    for (let row = 0; row < 8; row++) {
      const g = row * 4;
      // L y = g
      const y0 = PHt[g]! / l00;
      const y1 = (PHt[g + 1]! - l10 * y0) / l11;
      const y2 = (PHt[g + 2]! - l20 * y0 - l21 * y1) / l22;
      const y3 = (PHt[g + 3]! - l30 * y0 - l31 * y1 - l32 * y2) / l33;
      // L^T k = y
      const k3 = y3 / l33;
      const k2 = (y2 - l32 * k3) / l22;
      const k1 = (y1 - l21 * k2 - l31 * k3) / l11;
      const k0 = (y0 - l10 * k1 - l20 * k2 - l30 * k3) / l00;
      K[g] = k0;
      K[g + 1] = k1;
      K[g + 2] = k2;
      K[g + 3] = k3;
    }
    const e0 = z[0]! - mean[0]!;
    const e1 = z[1]! - mean[1]!;
    const e2 = z[2]! - mean[2]!;
    const e3 = z[3]! - mean[3]!;
    for (let i = 0; i < 8; i++) {
      const k0 = K[i * 4]!;
      const k1 = K[i * 4 + 1]!;
      const k2 = K[i * 4 + 2]!;
      const k3 = K[i * 4 + 3]!;
      mean[i] = mean[i]! + k0 * e0 + k1 * e1 + k2 * e2 + k3 * e3;
      // P is symmetric: compute the upper triangle and mirror it.
      for (let j = i; j < 8; j++) {
        const v = cov[i * 8 + j]! - (k0 * PHt[j * 4]! + k1 * PHt[j * 4 + 1]! + k2 * PHt[j * 4 + 2]! + k3 * PHt[j * 4 + 3]!);
        cov[i * 8 + j] = v;
        cov[j * 8 + i] = v;
      }
    }
  }
}
