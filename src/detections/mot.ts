import { VideoAnalysisError } from "../errors.js";
import { Detections } from "./detections.js";

/**
 * MOTChallenge text rows, the format of det.txt inputs and of tracker results scored by the
 * standard tools (TrackEval, py-motmetrics):
 *   frame, id, bb_left, bb_top, bb_width, bb_height, conf, x, y, z
 * frames count from 1, boxes are in pixels (top-left corner and size), id is -1 in detection files,
 * and x, y, z are -1 for 2D data. Detections.frameIndex counts from 0, so frame = frameIndex + 1.
 */

/** Options for reading MOT rows. */
export interface ParseMotOptions {
  /** Name of the file, for error messages. */
  source?: string;
  /** Column (0-based) holding a class id, if the file has one (e.g. 7 in MOT17 ground truth); otherwise class 0. */
  classColumn?: number;
}

/** The frames of a MOT file: detections per frame, in ascending frame order, frames without rows omitted. */
export interface MotFrames {
  /** Detections per 1-based frame number. */
  frames: Map<number, Detections>;
  /** First and last frame numbers seen (0 when the file is empty). */
  firstFrame: number;
  lastFrame: number;
}

/**
 * Reads MOTChallenge rows (comma or whitespace separated; blank lines and lines starting with #
 * skipped). Rows with an id other than -1 keep it as the track id.
 *
 * @example
 * const { frames } = parseMot("1,-1,100,50,40,80,0.9,-1,-1,-1\n");
 * frames.get(1)!.box(0);   // [100, 50, 140, 130]
 */
export function parseMot(text: string, options: ParseMotOptions = {}): MotFrames {
  const where = options.source ?? "MOT rows";
  type Row = { frame: number; id: number; x: number; y: number; w: number; h: number; conf: number; cls: number };
  const rows: Row[] = [];
  const lines = text.split(/\r?\n/);
  for (let li = 0; li < lines.length; li++) {
    const line = lines[li]!.trim();
    if (line === "" || line.startsWith("#")) continue;
    const cols = line.split(/\s*,\s*|\s+/).map(Number);
    if (cols.length < 6 || cols.slice(0, 6).some((v) => !Number.isFinite(v))) {
      throw new VideoAnalysisError(
        "INVALID_ARGUMENT",
        `${where} line ${li + 1}: expected "frame, id, left, top, width, height[, conf, x, y, z]" with numbers, got "${line.slice(0, 80)}"`,
      );
    }
    const frame = cols[0]!;
    if (!Number.isInteger(frame) || frame < 1) {
      throw new VideoAnalysisError("INVALID_ARGUMENT", `${where} line ${li + 1}: frame numbers start at 1 in MOTChallenge files, got ${frame}`);
    }
    const conf = cols.length > 6 && Number.isFinite(cols[6]) ? cols[6]! : 1;
    const cls = options.classColumn !== undefined && cols.length > options.classColumn ? cols[options.classColumn]! : 0;
    rows.push({ frame, id: cols[1]!, x: cols[2]!, y: cols[3]!, w: cols[4]!, h: cols[5]!, conf, cls });
  }
  const byFrame = new Map<number, Row[]>();
  for (const r of rows) {
    let list = byFrame.get(r.frame);
    if (!list) byFrame.set(r.frame, (list = []));
    list.push(r);
  }
  const frames = new Map<number, Detections>();
  const numbers = [...byFrame.keys()].sort((a, b) => a - b);
  for (const f of numbers) {
    const list = byFrame.get(f)!;
    const n = list.length;
    const xyxy = new Float32Array(4 * n);
    const scores = new Float32Array(n);
    const classIds = new Int32Array(n);
    const hasIds = list.every((r) => r.id >= 0);
    const trackIds = hasIds ? new Int32Array(n) : null;
    list.forEach((r, i) => {
      xyxy[4 * i] = r.x;
      xyxy[4 * i + 1] = r.y;
      xyxy[4 * i + 2] = r.x + r.w;
      xyxy[4 * i + 3] = r.y + r.h;
      scores[i] = r.conf;
      classIds[i] = Math.round(r.cls);
      if (trackIds) trackIds[i] = Math.round(r.id);
    });
    frames.set(f, new Detections({ xyxy, scores, classIds, trackIds, frameIndex: f - 1 }));
  }
  return { frames, firstFrame: numbers[0] ?? 0, lastFrame: numbers[numbers.length - 1] ?? 0 };
}

/** A number for a MOT row: at most `digits` decimals, trailing zeros dropped. */
function num(v: number, digits: number): string {
  const s = v.toFixed(digits);
  return s.includes(".") ? s.replace(/\.?0+$/, "") : s;
}

/**
 * MOTChallenge rows for one frame's detections (one line each, newline-terminated): the track id
 * when present (else -1), the box as left, top, width, height, the score, and -1, -1, -1.
 * `digits` decimals are written for coordinates (default 3, well below a pixel). `frame` is the frame
 * number written (default frameIndex + 1). Boxes without area
 * or with a coordinate that is not finite are not written (they are no objects, and the scoring tools
 * would read NaN as a box).
 *
 * @example
 * const tracks = new Detections({ xyxy: Float32Array.of(100, 50, 140, 130), scores: Float32Array.of(0.9), classIds: Int32Array.of(0), trackIds: Int32Array.of(7), frameIndex: 0 });
 * console.log(formatMot(tracks)); // "1,7,100,50,40,80,0.9,-1,-1,-1": frame 1, track 7, left, top, width, height, score
 */
export function formatMot(detections: Detections, digits = 3, frame = detections.frameIndex + 1): string {
  const d = detections.withoutDegenerateBoxes();
  let out = "";
  for (let i = 0; i < d.length; i++) {
    out += motRow(frame, d.trackIds ? d.trackIds[i]! : -1, d.xyxy.subarray(4 * i, 4 * i + 4), d.scores[i]!, digits);
  }
  return out;
}

/** One MOTChallenge line for an x1, y1, x2, y2 box; "" for a box with no area or a coordinate that is not finite. */
export function motRow(frame: number, id: number, xyxy: ArrayLike<number>, score: number, digits = 3): string {
  const [x1, y1, x2, y2] = [xyxy[0]!, xyxy[1]!, xyxy[2]!, xyxy[3]!];
  if (!(x2 - x1 > 0 && y2 - y1 > 0) || !Number.isFinite(x1 + y1 + x2 + y2 + score)) return "";
  return `${frame},${id},${num(x1, digits)},${num(y1, digits)},${num(x2 - x1, digits)},${num(y2 - y1, digits)},${num(score, 4)},-1,-1,-1\n`;
}
