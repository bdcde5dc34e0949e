/**
 * Non-maximum suppression with Ultralytics' semantics (ultralytics/utils/nms.py non_max_suppression,
 * which hands the boxes to torchvision.ops.nms): candidates in descending score order (ties: the
 * earlier candidate first), a candidate is dropped when its IoU with an already kept box of the same
 * class exceeds the threshold (any class with `agnostic`), IoU = intersection / (area a + area b -
 * intersection) without the +1 pixel convention, and the first `maxDet` kept are returned.
 *
 * Ultralytics makes NMS class-aware by shifting each class's boxes by class x 7680 pixels in float32;
 * comparing only boxes of the same class is the same thing without the float32 rounding that shift
 * introduces far from the origin.
 */

/** Settings of decoding and NMS for YOLO detections; Ultralytics' prediction defaults. */
export interface NmsOptions {
  /**
   * A candidate needs a class score strictly above this (Ultralytics `conf`, 0.25). Raising it keeps
   * only confident detections (fewer false positives, more missed objects) and makes decoding faster;
   * lowering it finds faint and occluded objects at the cost of more false positives.
   */
  conf: number;
  /**
   * IoU above which a lower-scored box is suppressed by a kept one (Ultralytics `iou`, 0.7). Lowering
   * it removes more overlapping boxes (people in a crowd merge into one); raising it keeps more
   * near-duplicates of the same object.
   */
  iou: number;
  /** Most detections kept per image (300). Lowering it caps the output on crowded scenes. */
  maxDet: number;
  /**
   * Most candidates, by score, that enter NMS (30000). Lowering it bounds the time NMS can take on
   * pathological outputs (a near-zero `conf`), at the risk of dropping real low-score objects.
   */
  maxNms: number;
  /**
   * true suppresses overlapping boxes whatever their classes (one box per object even when the
   * model hesitates between "car" and "truck"); false (the default) suppresses within a class only.
   */
  agnostic: boolean;
  /**
   * true lets one box carry several classes: every class scoring above `conf` becomes a
   * candidate (more recall, more duplicates); false keeps the best class per box.
   */
  multiLabel: boolean;
  /** Keep only these class indices (after choosing each box's best class), or null for all. */
  classes: readonly number[] | null;
}

export const DEFAULT_NMS_OPTIONS: Readonly<NmsOptions> = Object.freeze({
  conf: 0.25,
  iou: 0.7,
  maxDet: 300,
  maxNms: 30000,
  agnostic: false,
  multiLabel: false,
  classes: null,
});

/** NMS settings for boxes that are already decoded (Detections.withNms). */
export type BoxNmsOptions = Pick<NmsOptions, "iou" | "maxDet" | "agnostic">;

function checkUnit(name: string, v: unknown): number {
  if (typeof v !== "number" || Number.isNaN(v)) throw new TypeError(`${name} must be a number, got ${String(v)}`);
  if (v < 0 || v > 1) throw new RangeError(`${name} must be within 0..1, got ${v}`);
  return v;
}

function checkCount(name: string, v: unknown): number {
  if (typeof v !== "number" || Number.isNaN(v)) throw new TypeError(`${name} must be a number, got ${String(v)}`);
  if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name} must be an integer >= 1, got ${v}`);
  return v;
}

/** Defaults filled in and every field checked (TypeError for a wrong type, RangeError out of range). */
export function resolveNmsOptions(partial: Partial<NmsOptions> = {}): NmsOptions {
  const o = { ...DEFAULT_NMS_OPTIONS, ...Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) } as NmsOptions;
  checkUnit("conf", o.conf);
  checkUnit("iou", o.iou);
  checkCount("maxDet", o.maxDet);
  checkCount("maxNms", o.maxNms);
  if (typeof o.agnostic !== "boolean") throw new TypeError(`agnostic must be a boolean, got ${String(o.agnostic)}`);
  if (typeof o.multiLabel !== "boolean") throw new TypeError(`multiLabel must be a boolean, got ${String(o.multiLabel)}`);
  if (o.classes !== null) {
    if (!Array.isArray(o.classes) || o.classes.some((c) => !Number.isInteger(c) || c < 0)) {
      throw new TypeError(`classes must be null or an array of class indices (integers >= 0), got ${JSON.stringify(o.classes)}`);
    }
  }
  return o;
}

const KEY_SHIFT = 2 ** 21;

/**
 * Writes into `order` the indices 0..count-1 sorted by descending score, ties by ascending index
 * (a stable sort). Non-negative float32 scores are sorted as packed float64 keys (the score's bits,
 * then the reversed index) with the typed array's native sort; anything else falls back to a
 * comparator sort.
 */
export function orderByScore(scores: Float32Array, count: number, order: Int32Array, keys?: Float64Array): void {
  let fast = count < KEY_SHIFT && scores.byteOffset % 4 === 0;
  const bits = fast ? new Uint32Array(scores.buffer, scores.byteOffset, count) : null;
  if (bits) {
    for (let i = 0; i < count; i++) {
      if (bits[i]! > 0x7f800000) {
        fast = false; // negative, -0 or NaN
        break;
      }
    }
  }
  if (fast && bits) {
    const k = keys && keys.length >= count ? keys.subarray(0, count) : new Float64Array(count);
    for (let i = 0; i < count; i++) k[i] = bits[i]! * KEY_SHIFT + (KEY_SHIFT - 1 - i);
    k.sort();
    for (let j = 0; j < count; j++) order[j] = KEY_SHIFT - 1 - (k[count - 1 - j]! % KEY_SHIFT);
    return;
  }
  const idx = Array.from({ length: count }, (_, i) => i);
  idx.sort((a, b) => {
    const sa = scores[a]!;
    const sb = scores[b]!;
    if (sa > sb) return -1;
    if (sa < sb) return 1;
    if (sa !== sb) return Number.isNaN(sa) ? (Number.isNaN(sb) ? a - b : 1) : -1; // NaN last
    return a - b;
  });
  for (let j = 0; j < count; j++) order[j] = idx[j]!;
}

/**
 * Greedy NMS over `count` boxes (xyxy, 4 values each) visited in `order`. Writes the kept indices,
 * best first, to `keep` and returns how many there are (at most maxDet). `classIds` null or
 * `agnostic` compares every pair.
 */
export function greedyNms(
  xyxy: ArrayLike<number>,
  classIds: Int32Array | null,
  order: Int32Array,
  count: number,
  iou: number,
  maxDet: number,
  agnostic: boolean,
  keep: Int32Array,
): number {
  const perClass = !agnostic && classIds !== null;
  // Kept boxes are chained per class (head by class, next by box), so a candidate is compared only
  // with the kept boxes it could be suppressed by.
  let minC = 0;
  let maxC = 0;
  if (perClass) {
    minC = Infinity;
    maxC = -Infinity;
    for (let k = 0; k < count; k++) {
      const c = classIds[order[k]!]!;
      if (c < minC) minC = c;
      if (c > maxC) maxC = c;
    }
  }
  const span = perClass && count > 0 ? maxC - minC + 1 : 1;
  const head = new Int32Array(span).fill(-1);
  const next = new Int32Array(Math.min(count, maxDet));
  const kx1 = new Float64Array(next.length);
  const ky1 = new Float64Array(next.length);
  const kx2 = new Float64Array(next.length);
  const ky2 = new Float64Array(next.length);
  const karea = new Float64Array(next.length);
  let kept = 0;
  for (let k = 0; k < count && kept < maxDet; k++) {
    const i = order[k]!;
    const x1 = xyxy[4 * i]!;
    const y1 = xyxy[4 * i + 1]!;
    const x2 = xyxy[4 * i + 2]!;
    const y2 = xyxy[4 * i + 3]!;
    const area = (x2 - x1) * (y2 - y1);
    const slot = perClass ? classIds[i]! - minC : 0;
    let suppressed = false;
    for (let j = head[slot]!; j !== -1; j = next[j]!) {
      const iw = Math.min(x2, kx2[j]!) - Math.max(x1, kx1[j]!);
      if (iw <= 0) continue;
      const ih = Math.min(y2, ky2[j]!) - Math.max(y1, ky1[j]!);
      if (ih <= 0) continue;
      const inter = iw * ih;
      if (inter / (area + karea[j]! - inter) > iou) {
        suppressed = true;
        break;
      }
    }
    if (suppressed) continue;
    kx1[kept] = x1;
    ky1[kept] = y1;
    kx2[kept] = x2;
    ky2[kept] = y2;
    karea[kept] = area;
    next[kept] = head[slot]!;
    head[slot] = kept;
    keep[kept++] = i;
  }
  return kept;
}

/**
 * NMS on decoded boxes: the indices of the boxes kept, highest score first.
 *
 * @example
 * // two overlapping boxes of one class and one of another class:
 * nonMaxSuppression(Float32Array.of(0,0,10,10, 1,1,11,11, 0,0,10,10), Float32Array.of(0.9, 0.8, 0.7), Int32Array.of(0, 0, 1), { iou: 0.5 });
 * // Int32Array [0, 2]
 */
export function nonMaxSuppression(
  xyxy: Float32Array | Float64Array,
  scores: Float32Array,
  classIds: Int32Array | null,
  options: Partial<BoxNmsOptions> = {},
): Int32Array {
  const iou = checkUnit("iou", options.iou ?? DEFAULT_NMS_OPTIONS.iou);
  const maxDet = checkCount("maxDet", options.maxDet ?? DEFAULT_NMS_OPTIONS.maxDet);
  const agnostic = options.agnostic ?? false;
  const n = scores.length;
  if (xyxy.length !== 4 * n) throw new RangeError(`nonMaxSuppression: ${xyxy.length} box values for ${n} scores (4 per box)`);
  if (classIds && classIds.length !== n) throw new RangeError(`nonMaxSuppression: ${classIds.length} class ids for ${n} scores`);
  const order = new Int32Array(n);
  orderByScore(scores, n, order);
  const keep = new Int32Array(Math.min(n, maxDet));
  const kept = greedyNms(xyxy, classIds, order, n, iou, maxDet, agnostic, keep);
  return keep.slice(0, kept);
}
