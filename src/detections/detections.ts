import { nonMaxSuppression, type BoxNmsOptions } from "./nms.js";

/** The arrays a Detections value is made of; `trackIds` is absent until a tracker assigns them. */
export interface DetectionsInit {
  /** Boxes as x1, y1, x2, y2 in source pixels, 4 values per detection. */
  xyxy: Float32Array;
  /** Confidence of each detection. */
  scores: Float32Array;
  /** Class index of each detection (COCO order for the YOLO models). */
  classIds: Int32Array;
  /** Track id of each detection (positive), or absent. */
  trackIds?: Int32Array | null;
  /** Index of the frame (0-based) the detections belong to. */
  frameIndex?: number;
  /** The model's class names (index = class id), when known: toRecords() then names each class. */
  classNames?: readonly string[] | undefined;
}

/** One detection as a plain object: for printing and JSON, not for hot paths. */
export interface DetectionRecord {
  box: [number, number, number, number];
  score: number;
  classId: number;
  /** The class's name, when the detections carry the model's class names. */
  className?: string;
  trackId?: number;
}

/**
 * The detections of one frame: what every detector path (raw YOLO output, End2End output, MOT
 * files) produces and every consumer (tracker, artifacts, CLI) reads. Columnar typed arrays, one
 * entry per detection, immutable by convention: operations return new values.
 *
 * @example
 * const d = new Detections({ xyxy: Float32Array.of(10, 20, 110, 220), scores: Float32Array.of(0.9), classIds: Int32Array.of(0) });
 * d.length;                             // 1
 * d.filter((i) => d.scores[i]! > 0.5);  // same detection
 * d.toRecords();                        // [{ box: [10, 20, 110, 220], score: 0.8999999761581421, classId: 0 }]
 */
export class Detections {
  readonly xyxy: Float32Array;
  readonly scores: Float32Array;
  readonly classIds: Int32Array;
  readonly trackIds: Int32Array | null;
  readonly frameIndex: number;
  /** The model's class names (index = class id), when known. */
  readonly classNames: readonly string[] | undefined;

  constructor(init: DetectionsInit) {
    const { xyxy, scores, classIds } = init;
    if (!(xyxy instanceof Float32Array)) throw new TypeError("Detections: xyxy must be a Float32Array");
    if (!(scores instanceof Float32Array)) throw new TypeError("Detections: scores must be a Float32Array");
    if (!(classIds instanceof Int32Array)) throw new TypeError("Detections: classIds must be an Int32Array");
    const n = scores.length;
    if (xyxy.length !== 4 * n) throw new RangeError(`Detections: xyxy holds ${xyxy.length} values, 4 x ${n} scores needs ${4 * n}`);
    if (classIds.length !== n) throw new RangeError(`Detections: ${classIds.length} class ids for ${n} scores`);
    const trackIds = init.trackIds ?? null;
    if (trackIds !== null) {
      if (!(trackIds instanceof Int32Array)) throw new TypeError("Detections: trackIds must be an Int32Array");
      if (trackIds.length !== n) throw new RangeError(`Detections: ${trackIds.length} track ids for ${n} scores`);
    }
    const frameIndex = init.frameIndex ?? 0;
    if (!Number.isInteger(frameIndex) || frameIndex < 0) throw new RangeError(`Detections: frameIndex must be a non-negative integer, got ${frameIndex}`);
    this.xyxy = xyxy;
    this.scores = scores;
    this.classIds = classIds;
    this.trackIds = trackIds;
    this.frameIndex = frameIndex;
    this.classNames = init.classNames;
  }

  /** The same detections, naming their classes with `classNames` (index = class id). */
  withClassNames(classNames: readonly string[] | undefined): Detections {
    return new Detections({ ...this.init(), classNames });
  }

  /** The class name of detection i: the model's name, else "class<id>". */
  className(i: number): string {
    const id = this.classIds[i]!;
    return this.classNames?.[id] ?? `class${id}`;
  }

  private init(): DetectionsInit {
    return { xyxy: this.xyxy, scores: this.scores, classIds: this.classIds, trackIds: this.trackIds, frameIndex: this.frameIndex, classNames: this.classNames };
  }

  /** No detections. */
  static empty(frameIndex = 0): Detections {
    return new Detections({ xyxy: new Float32Array(0), scores: new Float32Array(0), classIds: new Int32Array(0), frameIndex });
  }

  /** From plain records (boxes xyxy): convenient for tests and small inputs. */
  static fromRecords(records: readonly DetectionRecord[], frameIndex = 0): Detections {
    const n = records.length;
    const xyxy = new Float32Array(4 * n);
    const scores = new Float32Array(n);
    const classIds = new Int32Array(n);
    const hasTracks = n > 0 && records.every((r) => r.trackId !== undefined);
    const trackIds = hasTracks ? new Int32Array(n) : null;
    records.forEach((r, i) => {
      xyxy.set(r.box, 4 * i);
      scores[i] = r.score;
      classIds[i] = r.classId;
      if (trackIds) trackIds[i] = r.trackId!;
    });
    return new Detections({ xyxy, scores, classIds, trackIds, frameIndex });
  }

  get length(): number {
    return this.scores.length;
  }

  /** Box i as [x1, y1, x2, y2]. */
  box(i: number): [number, number, number, number] {
    const o = 4 * i;
    return [this.xyxy[o]!, this.xyxy[o + 1]!, this.xyxy[o + 2]!, this.xyxy[o + 3]!];
  }

  /** The detections at the given indices, in that order. */
  select(indices: ArrayLike<number>): Detections {
    const n = indices.length;
    const xyxy = new Float32Array(4 * n);
    const scores = new Float32Array(n);
    const classIds = new Int32Array(n);
    const trackIds = this.trackIds ? new Int32Array(n) : null;
    for (let k = 0; k < n; k++) {
      const i = indices[k]!;
      if (!(i >= 0 && i < this.length)) throw new RangeError(`Detections.select: index ${i} is outside 0..${this.length - 1}`);
      xyxy[4 * k] = this.xyxy[4 * i]!;
      xyxy[4 * k + 1] = this.xyxy[4 * i + 1]!;
      xyxy[4 * k + 2] = this.xyxy[4 * i + 2]!;
      xyxy[4 * k + 3] = this.xyxy[4 * i + 3]!;
      scores[k] = this.scores[i]!;
      classIds[k] = this.classIds[i]!;
      if (trackIds) trackIds[k] = this.trackIds![i]!;
    }
    return new Detections({ xyxy, scores, classIds, trackIds, frameIndex: this.frameIndex, classNames: this.classNames });
  }

  /** The detections for which `keep` is true: a predicate on the index, or a mask with one entry per detection. */
  filter(keep: ((i: number, d: Detections) => boolean) | ArrayLike<boolean | number>): Detections {
    const idx: number[] = [];
    if (typeof keep === "function") {
      for (let i = 0; i < this.length; i++) if (keep(i, this)) idx.push(i);
    } else {
      if (keep.length !== this.length) throw new RangeError(`Detections.filter: the mask has ${keep.length} entries for ${this.length} detections`);
      for (let i = 0; i < this.length; i++) if (keep[i]) idx.push(i);
    }
    return this.select(idx);
  }

  /**
   * The detections without boxes of zero or negative width or height or with a coordinate that is not
   * finite (this object itself when there are none): a box clipped away at the frame's edge measures
   * nothing, and its aspect ratio would be 0/0 in a tracker.
   */
  withoutDegenerateBoxes(): Detections {
    const b = this.xyxy;
    const ok = (i: number) => {
      const x1 = b[4 * i]!;
      const y1 = b[4 * i + 1]!;
      const x2 = b[4 * i + 2]!;
      const y2 = b[4 * i + 3]!;
      return Number.isFinite(x1) && Number.isFinite(y1) && Number.isFinite(x2) && Number.isFinite(y2) && x2 > x1 && y2 > y1;
    };
    for (let i = 0; i < this.length; i++) if (!ok(i)) return this.filter(ok);
    return this;
  }

  /** Detections whose class is one of `classIds`. */
  withClasses(classIds: readonly number[]): Detections {
    const set = new Set(classIds);
    return this.filter((i) => set.has(this.classIds[i]!));
  }

  /** Detections scoring at least `min`. */
  withMinScore(min: number): Detections {
    return this.filter((i) => this.scores[i]! >= min);
  }

  /** The same detections with these track ids (or none). */
  withTrackIds(trackIds: Int32Array | null): Detections {
    return new Detections({ xyxy: this.xyxy, scores: this.scores, classIds: this.classIds, trackIds, frameIndex: this.frameIndex });
  }

  /** The same detections, for another frame index. */
  withFrameIndex(frameIndex: number): Detections {
    return new Detections({ ...this.init(), frameIndex });
  }

  /**
   * Non-maximum suppression on these detections (Ultralytics/torchvision semantics: greedy by score,
   * a box is dropped when its IoU with a kept box of the same class, or of any class with
   * `agnostic`, exceeds `iou`). Returns the kept detections, highest score first.
   */
  withNms(options: Partial<BoxNmsOptions> = {}): Detections {
    return this.select(nonMaxSuppression(this.xyxy, this.scores, this.classIds, options));
  }

  /** Plain objects, one per detection. */
  toRecords(): DetectionRecord[] {
    const out: DetectionRecord[] = [];
    for (let i = 0; i < this.length; i++) {
      const r: DetectionRecord = { box: this.box(i), score: this.scores[i]!, classId: this.classIds[i]! };
      if (this.classNames) r.className = this.className(i);
      if (this.trackIds) r.trackId = this.trackIds[i]!;
      out.push(r);
    }
    return out;
  }

  toJSON(): { frameIndex: number; detections: DetectionRecord[] } {
    return { frameIndex: this.frameIndex, detections: this.toRecords() };
  }
}
