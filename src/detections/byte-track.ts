import { VideoAnalysisError } from "../errors.js";
import { Detections } from "./detections.js";
import { KalmanFilterXyah, type KalmanForm } from "./kalman-filter.js";
import { LapjvSolver } from "./lapjv.js";

/**
 * ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection Box",
 * ECCV 2022): tracking by detection that also uses low-score boxes to keep occluded tracks alive.
 *
 * Every behaviour that changes results is an option; a variant is a named set of their defaults:
 * - "default": the Python original's association (below) on BoT-SORT's Kalman state (centre, width,
 *   height: the predicted width keeps up with changes of shape), reporting the detector's boxes. On
 *   MOT15 it keeps identities better than the original (README, Tracking).
 * - "python": the original, ifzhang/ByteTrack yolox/tracker (its output reproduced exactly on MOT15,
 *   Kalman boxes included): high detections are score > trackThresh, low ones lowThresh < score < trackThresh
 *   (lowThresh 0.1), the first and unconfirmed associations fuse IoU with the detection score
 *   (cost 1 - IoU x score), a new track needs score >= trackThresh + 0.1, matching uses the
 *   Kalman-predicted boxes.
 * - "cpp": the C++ deployment (Vertical-Beach/ByteTrack-cpp, as in ../shared/testdata/bytetrack):
 *   high is score >= trackThresh with no lower floor, plain IoU cost, a new track needs
 *   score >= highThresh (0.6), and matching uses each track's box from its last update (that code
 *   refreshes the box only on update, not on prediction). It keeps fewer identities (see README).
 * All: IoU with the +1 pixel convention of their box-overlap code, the low-score association at
 * cost limit 0.5, unconfirmed tracks (seen once) at 0.7, lost tracks kept trackBuffer x frameRate / 30
 * frames, duplicates between tracked and lost tracks (IoU > 0.85) resolved for the longer-lived one,
 * and assignment by LAPJV with the cost limit solved on the padded matrix (lapjv.ts).
 */
export type ByteTrackVariant = "default" | "python" | "cpp";
export const BYTETRACK_VARIANTS: readonly ByteTrackVariant[] = ["default", "python", "cpp"];

/** Which box a track reports: its matched detection's (as supervision does) or the Kalman filter's. */
export type TrackBox = "detection" | "track";

/** ByteTrack settings; every field has a default from the chosen variant. */
/** What the first association matches detections with: each track's Kalman prediction, or its last box. */
export type MatchOn = "prediction" | "last_box";

export interface ByteTrackOptions {
  /** Which set of defaults to start from (see above); "default" unless given. */
  variant: ByteTrackVariant;
  /**
   * Score splitting detections into high (first association, may start tracks) and low (second
   * association only, to keep tracks through occlusion). 0.5. Raising it makes fewer detections
   * start or lead tracks (fewer false tracks, more fragmentation); lowering it lets weak detections
   * drive tracks (more ghost tracks in clutter).
   */
  trackThresh: number;
  /**
   * Score a leftover high detection needs to start a new track (cpp: 0.6; default, python:
   * trackThresh + 0.1). Raising it delays or prevents tracks of weakly detected objects; lowering it
   * creates more short-lived false tracks.
   */
  highThresh: number;
  /**
   * Detections at or below this score are ignored entirely (default, python: 0.1; cpp: none,
   * -Infinity). Raising it drops more clutter from the low-score association; lowering it lets very
   * weak boxes keep tracks alive (and sometimes steal them).
   */
  lowThresh: number;
  /**
   * Cost limit of the first association (tracks x high detections), cost = 1 - IoU (x score when
   * fused). 0.8. Raising it accepts matches with less overlap (follows fast motion, but swaps ids
   * more easily in crowds); lowering it demands more overlap (more id switches to new tracks on
   * fast motion).
   */
  matchThresh: number;
  /** Cost limit of the second association (remaining tracks x low detections). 0.5; same trade-off. */
  lowMatchThresh: number;
  /** Cost limit for unconfirmed (one-frame) tracks against remaining high detections. 0.7; same trade-off. */
  unconfirmedMatchThresh: number;
  /**
   * Frames (at 30 fps) a lost track is kept for re-identification. 30. Raising it re-finds objects
   * after longer occlusions (and risks attaching a new object to an old id); lowering it ends tracks
   * sooner (more new ids after occlusions). Scaled by frameRate / 30.
   */
  trackBuffer: number;
  /** Frame rate of the input, to scale trackBuffer. 30. */
  frameRate: number;
  /**
   * Fuse the detection score into the IoU cost, 1 - IoU x score (default, python: true; cpp: false).
   * On, a confident detection wins a contested track over a weak one with a little more overlap;
   * off, overlap alone decides.
   */
  fuseScore: boolean;
  /**
   * Match on the Kalman-predicted boxes ("prediction": default, python) or on each track's last updated
   * box ("last_box": cpp). The prediction follows moving objects; the last box lags one frame behind each
   * one, which costs overlap on fast motion and identities where people cross.
   */
  matchOn: MatchOn;
  /**
   * true: IoU with the +1 pixel convention ((x2 - x1 + 1) widths) of both reference codes; false:
   * continuous IoU as in Ultralytics' port. Matters for small boxes.
   */
  iouPlusOne: boolean;
  /**
   * The Kalman filter's box state: "xyah" (centre, aspect ratio, height: SORT and ByteTrack, the python
   * and cpp variants) or "xywh" (centre, width, height, the noise of the width scaled by the width:
   * BoT-SORT's). With xyah the width follows a change of shape slowly (the aspect ratio has a fixed,
   * tiny noise), so after an object enters, turns or is partly occluded the predicted box stays too
   * wide or too narrow for a second or two and overlaps the detections less; xywh follows in a few frames.
   */
  kalman: KalmanForm;
  /**
   * The box reported for a track: its matched detection's ("detection": the default variant's, as
   * supervision does) or the Kalman filter's after the update ("track": the python and cpp variants',
   * as their reference codes report). The Kalman box lags behind changes of size: for a second or two
   * after an object enters it can be far wider than the object.
   */
  box: TrackBox;
}

// The two reference variants report what their reference code reports, the Kalman box.
const COMMON = { kalman: "xyah" as KalmanForm, trackThresh: 0.5, matchThresh: 0.8, lowMatchThresh: 0.5, unconfirmedMatchThresh: 0.7, trackBuffer: 30, frameRate: 30, iouPlusOne: true, box: "track" as TrackBox };
const PYTHON = { ...COMMON, highThresh: 0.6, lowThresh: 0.1, fuseScore: true, matchOn: "prediction" as MatchOn };

/** The defaults of each variant (trackThresh-dependent fields resolved for trackThresh 0.5). */
export const BYTETRACK_DEFAULTS: Readonly<Record<ByteTrackVariant, Readonly<ByteTrackOptions>>> = Object.freeze({
  default: Object.freeze({ ...PYTHON, variant: "default" as const, kalman: "xywh" as const, box: "detection" as const }),
  python: Object.freeze({ ...PYTHON, variant: "python" as const }),
  cpp: Object.freeze({ ...COMMON, variant: "cpp" as const, highThresh: 0.6, lowThresh: -Infinity, fuseScore: false, matchOn: "last_box" as MatchOn }),
});

/** Defaults filled in from the variant and every field checked (TypeError / RangeError). */
export function resolveByteTrackOptions(partial: Partial<ByteTrackOptions> = {}): ByteTrackOptions {
  const given = Object.fromEntries(Object.entries(partial).filter(([, v]) => v !== undefined)) as Partial<ByteTrackOptions>;
  const variant = given.variant ?? "default";
  if (!BYTETRACK_VARIANTS.includes(variant)) throw new RangeError(`variant must be one of ${BYTETRACK_VARIANTS.join(", ")}, got ${JSON.stringify(variant)}`);
  const base = BYTETRACK_DEFAULTS[variant];
  const o: ByteTrackOptions = { ...base, ...given, variant };
  // The Python-derived variants take the new-track score from trackThresh unless it is given.
  if (variant !== "cpp" && given.highThresh === undefined) o.highThresh = o.trackThresh + 0.1;
  for (const k of ["trackThresh", "highThresh", "matchThresh", "lowMatchThresh", "unconfirmedMatchThresh", "trackBuffer", "frameRate", "lowThresh"] as const) {
    if (typeof o[k] !== "number" || Number.isNaN(o[k])) throw new TypeError(`${k} must be a number, got ${String(o[k])}`);
  }
  for (const k of ["matchThresh", "lowMatchThresh", "unconfirmedMatchThresh"] as const) {
    if (o[k] < 0 || o[k] > 1) throw new RangeError(`${k} must be within 0..1 (a cost limit on 1 - IoU), got ${o[k]}`);
  }
  for (const k of ["trackThresh", "highThresh"] as const) {
    if (o[k] < 0 || o[k] > 1) throw new RangeError(`${k} must be within 0..1 (a detection score), got ${o[k]}`);
  }
  if (o.lowThresh > 1) throw new RangeError(`lowThresh must be at most 1 (a detection score), got ${o.lowThresh}`);
  if (o.trackBuffer < 0) throw new RangeError(`trackBuffer must be >= 0 frames, got ${o.trackBuffer}`);
  if (!(o.frameRate > 0)) throw new RangeError(`frameRate must be > 0, got ${o.frameRate}`);
  if (o.matchOn !== "prediction" && o.matchOn !== "last_box") throw new RangeError(`matchOn must be "prediction" or "last_box", got ${JSON.stringify(o.matchOn)}`);
  for (const k of ["fuseScore", "iouPlusOne"] as const) {
    if (typeof o[k] !== "boolean") throw new TypeError(`${k} must be a boolean, got ${String(o[k])}`);
  }
  if (o.kalman !== "xyah" && o.kalman !== "xywh") throw new RangeError(`kalman must be "xyah" or "xywh", got ${JSON.stringify(o.kalman)}`);
  if (o.box !== "detection" && o.box !== "track") throw new RangeError(`box must be "detection" or "track", got ${JSON.stringify(o.box)}`);
  return o;
}

/** A track as ByteTrack.state() gives it. */
export interface TrackState {
  id: number;
  state: number;
  activated: boolean;
  /** base64 of the float64 values. */
  mean: string;
  cov: string;
  rect: string;
  det: string;
  score: number;
  class_id: number;
  frame_id: number;
  start_frame: number;
  tracklet_len: number;
  in_removed_list: boolean;
}

/** ByteTrack.state(): everything the next update() depends on. */
export interface ByteTrackState {
  frame_id: number;
  next_id: number;
  tracked: TrackState[];
  lost: TrackState[];
}

const enum State {
  New = 0,
  Tracked = 1,
  Lost = 2,
  Removed = 3,
}

/** One track: Kalman state, the box of its last update, bookkeeping. */
class Track {
  id = 0;
  state = State.New;
  activated = false;
  readonly mean = new Float64Array(8);
  readonly cov = new Float64Array(64);
  /** tlwh of the last update (what the cpp variant matches on and what box "track" reports). */
  readonly rect = new Float64Array(4);
  /** tlwh of the detection of the last update (what box "detection" reports). */
  readonly det = new Float64Array(4);
  score = 0;
  classId = 0;
  frameId = 0;
  startFrame = 0;
  trackletLen = 0;
  /** Set once the track has been in a removed list at the end of an update (see update step 5). */
  inRemovedList = false;
  /** Scratch mark for list operations. */
  mark = 0;

  /** Refreshes `rect` from the Kalman mean: w = a * h (or w itself), top-left = centre - size / 2. */
  syncRect(xywh: boolean): void {
    const w = xywh ? this.mean[2]! : this.mean[2]! * this.mean[3]!;
    const h = this.mean[3]!;
    this.rect[0] = this.mean[0]! - w / 2;
    this.rect[1] = this.mean[1]! - h / 2;
    this.rect[2] = w;
    this.rect[3] = h;
  }
}

/**
 * Multi-object tracker: feed it each frame's detections (in order, empty frames included) and get
 * the tracked objects with their ids. Class ids and scores of the matched detections are carried
 * through; association itself ignores classes, as ByteTrack does.
 *
 * @example
 * const tracker = new ByteTrack({ frameRate: 30 }); // the default variant; { box: "track" } for Kalman boxes
 * for (const x of [100, 104, 108]) {
 *   // one person walking right: the same track id on every frame
 *   const dets = new Detections({ xyxy: Float32Array.of(x, 50, x + 40, 130), scores: Float32Array.of(0.9), classIds: Int32Array.of(0) });
 *   console.log(tracker.update(dets).trackIds); // Int32Array(1) [ 1 ]
 * }
 */
export class ByteTrack {
  readonly options: Readonly<ByteTrackOptions>;
  private readonly kf: KalmanFilterXyah;
  private readonly xywh: boolean;
  private readonly lap = new LapjvSolver();
  private readonly maxTimeLost: number;
  private frameId = 0;
  private nextId = 0;
  private tracked: Track[] = [];
  private lost: Track[] = [];
  // Scratch, grown as needed.
  private cost = new Float64Array(0);
  private rowMatch = new Int32Array(0);
  private colMatch = new Int32Array(0);
  private readonly z = new Float64Array(4);
  private tlwh = new Float64Array(0);

  constructor(options: Partial<ByteTrackOptions> = {}) {
    this.options = Object.freeze(resolveByteTrackOptions(options));
    this.xywh = this.options.kalman === "xywh";
    this.kf = new KalmanFilterXyah(1 / 20, 1 / 160, this.options.kalman);
    this.maxTimeLost = Math.trunc((this.options.frameRate / 30) * this.options.trackBuffer);
  }

  /** Forgets every track and restarts ids at 1 (e.g. between videos). */
  reset(): void {
    this.frameId = 0;
    this.nextId = 0;
    this.tracked = [];
    this.lost = [];
  }

  /**
   * The tracker's whole state (frame count, next id, tracked and lost tracks with their Kalman state),
   * JSON-safe, for a run's journal: restore() into a tracker of the same options continues exactly as
   * this one would (ids go on, lost tracks are kept). Kalman values travel as their float64 bytes.
   */
  state(): ByteTrackState {
    const f64 = (a: Float64Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString("base64");
    const track = (t: Track): TrackState => ({
      id: t.id, state: t.state, activated: t.activated, mean: f64(t.mean), cov: f64(t.cov), rect: f64(t.rect), det: f64(t.det),
      score: t.score, class_id: t.classId, frame_id: t.frameId, start_frame: t.startFrame, tracklet_len: t.trackletLen, in_removed_list: t.inRemovedList,
    });
    return { frame_id: this.frameId, next_id: this.nextId, tracked: this.tracked.map(track), lost: this.lost.map(track) };
  }

  /** Puts back a state() taken from a tracker with the same options. */
  restore(s: ByteTrackState): void {
    const f64 = (b64: string, into: Float64Array) => {
      const b = Buffer.from(b64, "base64");
      if (b.byteLength !== into.byteLength) throw new RangeError(`ByteTrack.restore: a Kalman array of ${b.byteLength} bytes, expected ${into.byteLength}`);
      new Uint8Array(into.buffer, into.byteOffset, into.byteLength).set(b);
    };
    const track = (x: TrackState): Track => {
      const t = new Track();
      t.id = x.id;
      t.state = x.state as State;
      t.activated = x.activated;
      f64(x.mean, t.mean);
      f64(x.cov, t.cov);
      f64(x.rect, t.rect);
      f64(x.det, t.det);
      t.score = x.score;
      t.classId = x.class_id;
      t.frameId = x.frame_id;
      t.startFrame = x.start_frame;
      t.trackletLen = x.tracklet_len;
      t.inRemovedList = x.in_removed_list;
      return t;
    };
    this.frameId = s.frame_id;
    this.nextId = s.next_id;
    this.tracked = s.tracked.map(track);
    this.lost = s.lost.map(track);
  }

  /** Number of update() calls since construction or reset(). */
  get frameCount(): number {
    return this.frameId;
  }

  private ensureScratch(rows: number, cols: number): void {
    if (this.cost.length < rows * cols) this.cost = new Float64Array(Math.max(rows * cols, 2 * this.cost.length));
    if (this.rowMatch.length < rows) this.rowMatch = new Int32Array(Math.max(rows, 2 * this.rowMatch.length));
    if (this.colMatch.length < cols) this.colMatch = new Int32Array(Math.max(cols, 2 * this.colMatch.length));
  }

  /** IoU with the configured convention between tlwh boxes given by components. */
  private iou(ax: number, ay: number, aw: number, ah: number, bx: number, by: number, bw: number, bh: number): number {
    const one = this.options.iouPlusOne ? 1 : 0;
    const iw = Math.min(ax + aw, bx + bw) - Math.max(ax, bx) + one;
    if (iw <= 0) return 0;
    const ih = Math.min(ay + ah, by + bh) - Math.max(ay, by) + one;
    if (ih <= 0) return 0;
    const inter = iw * ih;
    const union = (aw + one) * (ah + one) + (bw + one) * (bh + one) - inter;
    return union > 0 ? inter / union : 0;
  }

  /** The box a track is matched with: tlwh from the Kalman mean (python) or from its last update (cpp). */
  private matchBox(t: Track, out: Float64Array): void {
    if (this.options.matchOn === "prediction") {
      const w = this.xywh ? t.mean[2]! : t.mean[2]! * t.mean[3]!;
      const h = t.mean[3]!;
      out[0] = t.mean[0]! - w / 2;
      out[1] = t.mean[1]! - h / 2;
      out[2] = w;
      out[3] = h;
    } else out.set(t.rect);
  }

  private readonly tb = new Float64Array(4);

  /**
   * Associates `tracks` with detections `dets` (indices into tlwh/scores) at cost limit `limit`.
   * Afterwards rowMatch[i] is the matched position in `dets` or -1, colMatch[j] the matched track or -1.
   */
  private associate(tracks: Track[], dets: number[], tlwh: Float64Array, scores: Float32Array, limit: number, fuse: boolean): void {
    const rows = tracks.length;
    const cols = dets.length;
    this.ensureScratch(rows, cols);
    const cost = this.cost;
    const tb = this.tb;
    for (let i = 0; i < rows; i++) {
      this.matchBox(tracks[i]!, tb);
      for (let j = 0; j < cols; j++) {
        const d = dets[j]!;
        const iou = this.iou(tb[0]!, tb[1]!, tb[2]!, tb[3]!, tlwh[4 * d]!, tlwh[4 * d + 1]!, tlwh[4 * d + 2]!, tlwh[4 * d + 3]!);
        cost[i * cols + j] = fuse ? 1 - iou * scores[d]! : 1 - iou;
      }
    }
    this.lap.assignWithLimit(cost, rows, cols, limit, this.rowMatch, this.colMatch);
  }

  private setMeasurement(tlwh: Float64Array, d: number): Float64Array {
    const z = this.z;
    const w = tlwh[4 * d + 2]!;
    const h = tlwh[4 * d + 3]!;
    z[0] = tlwh[4 * d]! + w / 2;
    z[1] = tlwh[4 * d + 1]! + h / 2;
    z[2] = this.xywh ? w : w / h;
    z[3] = h;
    return z;
  }

  /** Track update with a matched detection (also the re-activation of a lost track). */
  private applyMatch(t: Track, tlwh: Float64Array, scores: Float32Array, classIds: Int32Array, d: number, reactivate: boolean): void {
    this.kf.update(t.mean, t.cov, this.setMeasurement(tlwh, d));
    t.syncRect(this.xywh);
    t.state = State.Tracked;
    t.activated = true;
    t.det.set(tlwh.subarray(4 * d, 4 * d + 4));
    t.score = scores[d]!;
    t.classId = classIds[d]!;
    t.frameId = this.frameId;
    t.trackletLen = reactivate ? 0 : t.trackletLen + 1;
  }

  /**
   * Advances the tracker by one frame. Returns the confirmed tracks of this frame: the box of the
   * detection each was matched with (box "detection") or the Kalman filter's after the update (box
   * "track"), and that detection's score and class. Boxes without area or with a coordinate that is
   * not finite are left out (never tracked, never reported); a score outside 0..1 (or NaN) is a
   * VideoAnalysisError INVALID_ARGUMENT, since every threshold is on that scale.
   */
  update(detections: Detections): Detections {
    const o = this.options;
    checkScores(detections, o);
    // A box with no area (clipped at the frame's edge) or a coordinate that is not finite would give the
    // Kalman filter an aspect ratio of 0/0: it is not a measurement, and is left out.
    detections = detections.withoutDegenerateBoxes();
    this.frameId++;
    const frame = this.frameId;
    const n = detections.length;
    if (this.tlwh.length < 4 * n) this.tlwh = new Float64Array(Math.max(4 * n, 2 * this.tlwh.length));
    const tlwh = this.tlwh;
    for (let i = 0; i < n; i++) {
      const x1 = detections.xyxy[4 * i]!;
      const y1 = detections.xyxy[4 * i + 1]!;
      tlwh[4 * i] = x1;
      tlwh[4 * i + 1] = y1;
      tlwh[4 * i + 2] = detections.xyxy[4 * i + 2]! - x1;
      tlwh[4 * i + 3] = detections.xyxy[4 * i + 3]! - y1;
    }
    const scores = detections.scores;
    const classIds = detections.classIds;

    // Step 1: split detections by score.
    const high: number[] = [];
    const low: number[] = [];
    // The Python-derived variants share the original's strict comparisons and list order.
    const python = o.variant !== "cpp";
    // Scores are float32; both references compare them in float32 (C++ floats, numpy float32 arrays
    // against Python floats), so the thresholds are rounded to float32 too.
    const trackThresh = Math.fround(o.trackThresh);
    const highThresh = Math.fround(o.highThresh);
    const lowThresh = Math.fround(o.lowThresh);
    for (let i = 0; i < n; i++) {
      const s = scores[i]!;
      if (python ? s > trackThresh : s >= trackThresh) high.push(i);
      else if (s > lowThresh && s < trackThresh) low.push(i);
    }

    const unconfirmed: Track[] = [];
    const active: Track[] = [];
    for (const t of this.tracked) (t.activated ? active : unconfirmed).push(t);
    const pool = joinTracks(active, this.lost);
    for (const t of pool) {
      if (t.state !== State.Tracked) t.mean[7] = 0;
      this.kf.predict(t.mean, t.cov);
    }

    // Step 2: tracks (confirmed and lost) x high detections.
    const activated: Track[] = [];
    const refound: Track[] = [];
    this.associate(pool, high, tlwh, scores, o.matchThresh, o.fuseScore);
    for (let i = 0; i < pool.length; i++) {
      const j = this.rowMatch[i]!;
      if (j < 0) continue;
      const t = pool[i]!;
      if (t.state === State.Tracked) {
        this.applyMatch(t, tlwh, scores, classIds, high[j]!, false);
        activated.push(t);
      } else {
        this.applyMatch(t, tlwh, scores, classIds, high[j]!, true);
        refound.push(t);
      }
    }
    const remainHigh: number[] = [];
    for (let j = 0; j < high.length; j++) if (this.colMatch[j]! < 0) remainHigh.push(high[j]!);
    const remainTracked: Track[] = [];
    for (let i = 0; i < pool.length; i++) if (this.rowMatch[i]! < 0 && pool[i]!.state === State.Tracked) remainTracked.push(pool[i]!);

    // Step 3: still-unmatched tracked tracks x low detections (plain IoU).
    const newlyLost: Track[] = [];
    this.associate(remainTracked, low, tlwh, scores, o.lowMatchThresh, false);
    for (let i = 0; i < remainTracked.length; i++) {
      const t = remainTracked[i]!;
      const j = this.rowMatch[i]!;
      if (j >= 0) {
        this.applyMatch(t, tlwh, scores, classIds, low[j]!, t.state !== State.Tracked);
        (t.state === State.Tracked ? activated : refound).push(t);
      } else if (t.state !== State.Lost) {
        t.state = State.Lost;
        newlyLost.push(t);
      }
    }

    // Step 4: unconfirmed tracks x remaining high detections; births.
    const newlyRemoved: Track[] = [];
    this.associate(unconfirmed, remainHigh, tlwh, scores, o.unconfirmedMatchThresh, o.fuseScore);
    const unconfirmedMatch = this.rowMatch.slice(0, unconfirmed.length);
    const highTaken = this.colMatch.slice(0, remainHigh.length);
    for (let i = 0; i < unconfirmed.length; i++) {
      const t = unconfirmed[i]!;
      const j = unconfirmedMatch[i]!;
      if (j >= 0) {
        this.applyMatch(t, tlwh, scores, classIds, remainHigh[j]!, false);
        activated.push(t);
      } else {
        t.state = State.Removed;
        newlyRemoved.push(t);
      }
    }
    for (let j = 0; j < remainHigh.length; j++) {
      if (highTaken[j]! >= 0) continue;
      const d = remainHigh[j]!;
      if (!(scores[d]! >= highThresh)) continue;
      const t = new Track();
      t.id = ++this.nextId;
      this.kf.initiate(this.setMeasurement(tlwh, d), t.mean, t.cov);
      t.syncRect(this.xywh);
      t.det.set(tlwh.subarray(4 * d, 4 * d + 4));
      t.state = State.Tracked;
      t.activated = frame === 1;
      t.score = scores[d]!;
      t.classId = classIds[d]!;
      t.frameId = frame;
      t.startFrame = frame;
      activated.push(t);
    }

    // Step 5: expire lost tracks, rebuild the lists.
    for (const t of this.lost) {
      if (frame - t.frameId > this.maxTimeLost) {
        t.state = State.Removed;
        newlyRemoved.push(t);
      }
    }
    let tracked: Track[];
    if (python) {
      tracked = joinTracks(
        joinTracks(
          this.tracked.filter((t) => t.state === State.Tracked),
          activated,
        ),
        refound,
      );
    } else tracked = joinTracks(activated, refound);
    const mark = ++joinMark;
    for (const t of tracked) t.mark = mark;
    let lost = joinTracks(
      this.lost.filter((t) => t.mark !== mark),
      newlyLost,
    );
    // Both references subtract the removed list *before* adding this frame's removals to it, so a
    // track expired in this frame stays in the lost list (and in matching) for one more frame.
    lost = lost.filter((t) => !t.inRemovedList);
    if (!python) lost.sort((a, b) => a.id - b.id); // the C++ code rebuilds the list through a std::map
    for (const t of newlyRemoved) t.inRemovedList = true;
    [this.tracked, this.lost] = this.removeDuplicates(tracked, lost);

    // Output: confirmed tracks.
    const out = this.tracked.filter((t) => t.activated && boxOk(o.box === "track" ? t.rect : t.det));
    const m = out.length;
    const xyxy = new Float32Array(4 * m);
    const outScores = new Float32Array(m);
    const outClasses = new Int32Array(m);
    const trackIds = new Int32Array(m);
    for (let k = 0; k < m; k++) {
      const t = out[k]!;
      const r = o.box === "track" ? t.rect : t.det;
      xyxy[4 * k] = r[0]!;
      xyxy[4 * k + 1] = r[1]!;
      xyxy[4 * k + 2] = r[0]! + r[2]!;
      xyxy[4 * k + 3] = r[1]! + r[3]!;
      outScores[k] = t.score;
      outClasses[k] = t.classId;
      trackIds[k] = t.id;
    }
    return new Detections({ xyxy, scores: outScores, classIds: outClasses, trackIds, frameIndex: detections.frameIndex });
  }

  /** Pairs of a tracked and a lost track overlapping with IoU > 0.85: the younger one is dropped. */
  private removeDuplicates(a: Track[], b: Track[]): [Track[], Track[]] {
    if (a.length === 0 || b.length === 0) return [a, b];
    const dropA = new Uint8Array(a.length);
    const dropB = new Uint8Array(b.length);
    const ta = new Float64Array(4);
    const tb = new Float64Array(4);
    for (let i = 0; i < a.length; i++) {
      this.matchBox(a[i]!, ta);
      for (let j = 0; j < b.length; j++) {
        this.matchBox(b[j]!, tb);
        if (1 - this.iou(ta[0]!, ta[1]!, ta[2]!, ta[3]!, tb[0]!, tb[1]!, tb[2]!, tb[3]!) < 0.15) {
          const ageA = a[i]!.frameId - a[i]!.startFrame;
          const ageB = b[j]!.frameId - b[j]!.startFrame;
          if (ageA > ageB) dropB[j] = 1;
          else dropA[i] = 1;
        }
      }
    }
    return [a.filter((_, i) => !dropA[i]), b.filter((_, j) => !dropB[j])];
  }
}

let joinMark = 0;

/**
 * a, then the tracks of b not already in it (order kept). Ids are unique per tracker, so "same id"
 * is "same track"; membership is marked on the tracks instead of kept in a set.
 */
function joinTracks(a: Track[], b: Track[]): Track[] {
  const out = a.slice();
  if (b.length === 0) return out;
  const mark = ++joinMark;
  for (const t of a) t.mark = mark;
  for (const t of b) {
    if (t.mark !== mark) {
      t.mark = mark;
      out.push(t);
    }
  }
  return out;
}

/** Scores must be on the thresholds' 0..1 scale: a detector's raw logits or a 0..100 scale would silently never match. */
function checkScores(d: Detections, o: ByteTrackOptions): void {
  const s = d.scores;
  for (let i = 0; i < s.length; i++) {
    const v = s[i]!;
    if (!(v >= 0 && v <= 1)) {
      throw new VideoAnalysisError(
        "INVALID_ARGUMENT",
        `tracker: detection ${i} of frame index ${d.frameIndex} has score ${+v.toPrecision(7)}, outside 0..1; the tracker's thresholds ` +
          `(track_thresh ${o.trackThresh}, high_thresh ${o.highThresh}) are on the 0..1 scale: rescale the detector's scores to 0..1 first`,
        { details: { frame_index: d.frameIndex, detection: i, score: v } },
      );
    }
  }
}

/** A tlwh box with a positive, finite width and height and finite corners. */
function boxOk(r: Float64Array): boolean {
  return Number.isFinite(r[0]!) && Number.isFinite(r[1]!) && Number.isFinite(r[2]!) && Number.isFinite(r[3]!) && r[2]! > 0 && r[3]! > 0;
}

