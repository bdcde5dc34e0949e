import { VideoAnalysisError } from "../errors.js";
import { unletterboxBoxes, type LetterboxInfo } from "../preprocess/letterbox.js";
import { Detections } from "./detections.js";
import { greedyNms, orderByScore, resolveNmsOptions, type NmsOptions } from "./nms.js";
import { ScoreScanner } from "./score-scan.js";

/** Decoder settings beyond NMS. */
export interface YoloDecoderOptions extends Partial<NmsOptions> {
  /**
   * Number of class rows after the 4 box rows; rows after them (mask coefficients of segmentation
   * heads) are ignored. Default: all rows after the box rows.
   */
  numClasses?: number;
  /** Use the WebAssembly SIMD scan when available (default true); false forces plain JavaScript. */
  simd?: boolean;
}

/** Rows and anchors of a raw YOLO output shape: [1, 4 + nc, N] or [4 + nc, N]. */
function layout(shape: readonly number[], length: number, numClasses: number | undefined): { rows: number; n: number; nc: number } {
  const ok = (shape.length === 3 && shape[0] === 1) || shape.length === 2;
  const rows = shape[shape.length - 2]!;
  const n = shape[shape.length - 1]!;
  if (!ok || !Number.isInteger(rows) || !Number.isInteger(n) || rows < 5 || n < 0) {
    throw new VideoAnalysisError(
      "CONTRACT_MISMATCH",
      `a raw YOLO output is [1, 4 + classes, anchors] (e.g. [1, 84, 8400]), got [${shape.join(", ")}]; point the detector at a raw (non-End2End) YOLO export or decode it as End2End`,
    );
  }
  if (length !== rows * n) throw new VideoAnalysisError("INVALID_ARGUMENT", `YOLO output of shape [${shape.join(", ")}] needs ${rows * n} values, got ${length}`);
  const nc = numClasses ?? rows - 4;
  if (!Number.isInteger(nc) || nc < 1 || nc > rows - 4) throw new RangeError(`numClasses must be an integer within 1..${rows - 4} for this output, got ${nc}`);
  return { rows, n, nc };
}

/**
 * Decodes raw YOLO (v8/11) detection outputs, [1, 4 + nc, N] with rows cx, cy, w, h (input pixels)
 * then nc sigmoided class scores, into Detections, with Ultralytics' non_max_suppression semantics
 * (see nms.ts) and boxes mapped back through the letterbox to source pixels and clipped.
 *
 * Keeps its working memory between calls: make one per stream and reuse it.
 *
 * @example
 * const { image, info } = letterbox(await readImageRgb("bus.jpg"), 640);
 * const yolo = await EmbeddedBackend.create({ models: { yolo: "yolo11n.onnx" } }); // a raw export: FP32 NCHW, x/255
 * const x = tensor("images", "FP32", [1, 3, 640, 640], normalizeNhwcToNchw(image.data, [1, 640, 640, 3], NORMALIZATIONS.unit));
 * const out = (await yolo.infer("yolo", [x])).outputs.output0!;
 * await yolo.close();
 * const decoder = new YoloDecoder({ conf: 0.25, iou: 0.7 }); // keep one per stream: it reuses its buffers
 * const dets = decoder.decode(toFloat32(out), out.shape, info); // boxes in bus.jpg's pixels
 * console.log(dets.withClassNames(COCO80_NAMES).toRecords().map((d) => d.className)); // [ "person", "bus", "person", "person", "person" ]
 */
export class YoloDecoder {
  readonly options: NmsOptions;
  private readonly numClasses: number | undefined;
  private readonly scanner: ScoreScanner;
  private cap = 0;
  private boxes = new Float64Array(0);
  private scores = new Float32Array(0);
  private classes = new Int32Array(0);
  private order = new Int32Array(0);
  private keys = new Float64Array(0);
  private keep = new Int32Array(0);
  private readonly classFilter: Uint8Array | null;

  constructor(options: YoloDecoderOptions = {}) {
    const { numClasses, simd, ...nms } = options;
    this.options = resolveNmsOptions(nms);
    this.numClasses = numClasses;
    this.scanner = new ScoreScanner(simd === false ? false : undefined);
    if (this.options.classes) {
      const max = Math.max(-1, ...this.options.classes);
      this.classFilter = new Uint8Array(max + 1);
      for (const c of this.options.classes) this.classFilter[c] = 1;
    } else this.classFilter = null;
  }

  /** Whether this decoder scans with WebAssembly SIMD. */
  get simd(): boolean {
    return this.scanner.useSimd;
  }

  private grow(n: number): void {
    if (n <= this.cap) return;
    const cap = Math.max(n, 2 * this.cap, 256);
    this.boxes = new Float64Array(4 * cap);
    this.scores = new Float32Array(cap);
    this.classes = new Int32Array(cap);
    this.order = new Int32Array(cap);
    this.keys = new Float64Array(cap);
    this.cap = cap;
  }

  private add(k: number, output: Float32Array, n: number, anchor: number, score: number, cls: number): number {
    if (this.classFilter && !this.classFilter[cls]) return k;
    if (k === this.cap) {
      const old = { b: this.boxes, s: this.scores, c: this.classes };
      const prev = this.cap;
      this.cap = 0;
      this.grow(Math.max(k + 1, 2 * prev));
      this.boxes.set(old.b.subarray(0, 4 * k));
      this.scores.set(old.s.subarray(0, k));
      this.classes.set(old.c.subarray(0, k));
    }
    // xywh -> xyxy in float32, as Ultralytics' xywh2xyxy does on the float32 tensor.
    const f = Math.fround;
    const cx = output[anchor]!;
    const cy = output[n + anchor]!;
    const hw = f(output[2 * n + anchor]! / 2);
    const hh = f(output[3 * n + anchor]! / 2);
    const o = 4 * k;
    this.boxes[o] = f(cx - hw);
    this.boxes[o + 1] = f(cy - hh);
    this.boxes[o + 2] = f(cx + hw);
    this.boxes[o + 3] = f(cy + hh);
    this.scores[k] = score;
    this.classes[k] = cls;
    return k + 1;
  }

  /**
   * Detections from one raw output. `letterbox` maps boxes back to source pixels (and clips them);
   * without it boxes stay in model input pixels.
   */
  decode(output: Float32Array, shape: readonly number[], letterbox: LetterboxInfo | null = null, frameIndex = 0): Detections {
    if (!(output instanceof Float32Array)) throw new TypeError("YoloDecoder.decode: output must be a Float32Array (convert FP16 outputs with toFloat32)");
    const { n, nc } = layout(shape, output.length, this.numClasses);
    const { conf, iou, maxDet, maxNms, agnostic } = this.options;
    const multiLabel = this.options.multiLabel && nc > 1;
    const sc = this.scanner;
    const found = sc.scan(output, nc, n, conf);
    if (found === 0) return Detections.empty(frameIndex);

    // Candidates in Ultralytics' order: by anchor, and by class within an anchor for multi-label.
    this.grow(found);
    let k = 0;
    if (multiLabel) {
      const thr = Math.fround(conf);
      for (let j = 0; j < found; j++) {
        const a = sc.anchors[j]!;
        for (let c = 0; c < nc; c++) {
          const s = output[(4 + c) * n + a]!;
          if (s > thr) k = this.add(k, output, n, a, s, c);
        }
      }
    } else {
      for (let j = 0; j < found; j++) k = this.add(k, output, n, sc.anchors[j]!, sc.bestScores[j]!, sc.bestClasses[j]!);
    }
    if (k === 0) return Detections.empty(frameIndex);

    // Score order; only the best maxNms enter NMS.
    if (this.keys.length < k) this.keys = new Float64Array(this.cap);
    if (this.order.length < k) this.order = new Int32Array(this.cap);
    orderByScore(this.scores.subarray(0, k), k, this.order, this.keys);
    const visit = Math.min(k, maxNms);
    if (this.keep.length < Math.min(visit, maxDet)) this.keep = new Int32Array(Math.min(visit, maxDet));
    const kept = greedyNms(this.boxes, agnostic ? null : this.classes, this.order, visit, iou, maxDet, agnostic, this.keep);

    const xyxy = new Float32Array(4 * kept);
    const scores = new Float32Array(kept);
    const classIds = new Int32Array(kept);
    for (let j = 0; j < kept; j++) {
      const i = this.keep[j]!;
      xyxy[4 * j] = this.boxes[4 * i]!;
      xyxy[4 * j + 1] = this.boxes[4 * i + 1]!;
      xyxy[4 * j + 2] = this.boxes[4 * i + 2]!;
      xyxy[4 * j + 3] = this.boxes[4 * i + 3]!;
      scores[j] = this.scores[i]!;
      classIds[j] = this.classes[i]!;
    }
    if (letterbox) unletterboxBoxes(xyxy, letterbox);
    return new Detections({ xyxy, scores, classIds, frameIndex });
  }
}

let shared: { key: string; decoder: YoloDecoder } | null = null;

/**
 * One-call form of YoloDecoder.decode; keeps one decoder (and its memory) for the last options used.
 *
 * @example
 * const { image, info } = letterbox(await readImageRgb("bus.jpg"), 640);
 * const yolo = await EmbeddedBackend.create({ models: { yolo: "yolo11n.onnx" } }); // a raw export: FP32 NCHW, x/255
 * const x = tensor("images", "FP32", [1, 3, 640, 640], normalizeNhwcToNchw(image.data, [1, 640, 640, 3], NORMALIZATIONS.unit));
 * const out = (await yolo.infer("yolo", [x])).outputs.output0!;
 * await yolo.close();
 * const dets = decodeYolo(toFloat32(out), out.shape, { conf: 0.25 }, info);
 * console.log(dets.length, dets.classIds); // 5 Int32Array(5) [ 0, 5, 0, 0, 0 ]
 */
export function decodeYolo(
  output: Float32Array,
  shape: readonly number[],
  options: YoloDecoderOptions = {},
  letterbox: LetterboxInfo | null = null,
  frameIndex = 0,
): Detections {
  const key = JSON.stringify(options);
  if (!shared || shared.key !== key) shared = { key, decoder: new YoloDecoder(options) };
  return shared.decoder.decode(output, shape, letterbox, frameIndex);
}
