import { ByteTrack, type ByteTrackOptions, type ByteTrackState } from "../../detections/byte-track.js";
import { Detections } from "../../detections/detections.js";
import { decodeEnd2End, end2endOutputs } from "../../detections/end2end.js";
import { YoloDecoder } from "../../detections/yolo.js";
import type { FrameContext } from "../../pipeline/component.js";
import type { ModelHandle } from "../../pipeline/model.js";
import type { DetectionSettings, TrackerSettings } from "../../profiles/schema.js";
import { tensor, toFloat32, type Tensor } from "../../tensor.js";
import { encodeJpeg } from "../../preprocess/jpeg.js";
import { daliLetterboxGeometry } from "../../preprocess/letterbox.js";
import { normalizeNhwcToNchw } from "../../preprocess/normalize.js";
import { NORMALIZATIONS } from "../../catalog/index.js";
import type { YoloLayout } from "./layout.js";

/**
 * core_object_detections: the frame letterboxed into the branch's S x S input (Ultralytics' rounding,
 * fill 114, never enlarged), one YOLO call, then decoding with the profile's detection settings (raw
 * output: candidates above `conf`, NMS at `iou`; End2End: the engine's detections filtered and
 * rescaled), boxes mapped back through the letterbox to frame pixels and then to the context's output
 * size (the video's pixels in `main`). Tracking is separate (DetectionTracker), since it must see the
 * frames in order.
 */
export class DetectionsComponent {
  private readonly decoder: YoloDecoder;

  /**
   * `jpegQuality` set: track D. The frame is JPEG-encoded (sharp) and sent as bytes; the server letterboxes
   * it as DALI does, so boxes map back through daliLetterboxGeometry (its rounding, not Ultralytics').
   */
  constructor(
    readonly model: ModelHandle,
    readonly settings: DetectionSettings,
    /** The model's input size and layout, and its output layout (the catalog's, or read from a model of the user's own). */
    readonly layout: YoloLayout,
    /** The model's class names (index = class id), given to every result. */
    readonly classNames?: readonly string[],
    /** JPEG quality of the frames sent to a track-D (jpeg input) model; undefined: pixels are sent. */
    readonly jpegQuality?: number,
  ) {
    this.decoder = new YoloDecoder({
      conf: settings.conf,
      iou: settings.iou,
      maxDet: settings.max_det,
      maxNms: settings.max_nms,
      agnostic: settings.agnostic,
      classes: settings.classes,
    });
  }

  async analyze(ctx: FrameContext, signal?: AbortSignal): Promise<Detections> {
    const s = this.layout.size;
    const spec = this.model.contract.inputs[0]!;
    const family = this.model.catalog?.family;
    const { input, info } = await ctx.clock.timeAsync("preprocess", async () => {
      if (this.jpegQuality !== undefined) {
        const frame = ctx.fitted.frame;
        const jpeg = await encodeJpeg(frame, this.jpegQuality);
        return { input: tensor(spec.name, "UINT8", [1, jpeg.bytes.length], jpeg.bytes), info: daliLetterboxGeometry(frame.width, frame.height, s) };
      }
      const f = await ctx.fitted.get(family?.resize ?? "letterbox", s, family?.pad ?? 114);
      const input =
        this.layout.input === "pixels"
          ? tensor(spec.name, "UINT8", [1, s, s, 3], f.image.data)
          : tensor(spec.name, "FP32", [1, 3, s, s], normalizeNhwcToNchw(f.image.data, [1, s, s, 3], NORMALIZATIONS.unit));
      return { input, info: f.letterbox ?? null };
    });
    const out = await this.model.infer([input], signal, ctx.clock);
    return ctx.clock.time("postprocess", () => {
      const dets = this.decode(out, info, ctx.index);
      const frame = ctx.fitted.frame;
      return outputDetections(dets.withClassNames(this.classNames), frame.width, frame.height, ctx.outputSize.width, ctx.outputSize.height);
    });
  }

  private decode(out: Record<string, Tensor>, info: Parameters<YoloDecoder["decode"]>[2], frameIndex: number): Detections {
    const outs = this.layout.outputs;
    if (this.layout.format === "end2end") {
      const get = (name: string) => {
        const t = out[name];
        if (!t) throw new RangeError(`End2End output ${name} missing from the answer of ${this.model.callName}`);
        return t;
      };
      const [numDets, boxes, scores, classes] = outs.map(get) as [Tensor, Tensor, Tensor, Tensor];
      return decodeEnd2End(
        end2endOutputs(numDets, boxes, scores, classes),
        { conf: this.settings.conf, maxDet: this.settings.max_det, classes: this.settings.classes },
        info,
        frameIndex,
      );
    }
    const t = out[outs[0]!]!;
    const dets = this.decoder.decode(toFloat32(t), t.shape, info, frameIndex);
    // The detections are new arrays: the raw output is read no more.
    this.model.recycle(out);
    return dets;
  }
}

/**
 * A frame's detections as the component gives them: mapped to the output picture and clipped to it, and
 * a box clipped to nothing at the picture's edge (or not finite) dropped: never tracked, never written.
 */
export function outputDetections(d: Detections, fw: number, fh: number, w: number, h: number): Detections {
  return scaleDetections(d, fw, fh, w, h).withoutDegenerateBoxes();
}

/** Boxes of a `fw` x `fh` frame mapped to a `w` x `h` picture of the same view, clipped to it. */
export function scaleDetections(d: Detections, fw: number, fh: number, w: number, h: number): Detections {
  if (d.length === 0 || (fw === w && fh === h)) return d;
  const sx = w / fw;
  const sy = h / fh;
  const xyxy = new Float32Array(d.xyxy.length);
  for (let i = 0; i < xyxy.length; i += 2) {
    xyxy[i] = d.xyxy[i]! * sx;
    xyxy[i + 1] = d.xyxy[i + 1]! * sy;
  }
  return clipDetections(new Detections({ xyxy, scores: d.scores, classIds: d.classIds, trackIds: d.trackIds, frameIndex: d.frameIndex, classNames: d.classNames }), w, h);
}

/** The detections with their boxes clipped to a `w` x `h` picture (the same value when all are inside). */
export function clipDetections(d: Detections, w: number, h: number): Detections {
  const b = d.xyxy;
  let inside = true;
  for (let i = 0; i < b.length && inside; i += 4) inside = b[i]! >= 0 && b[i + 1]! >= 0 && b[i + 2]! <= w && b[i + 3]! <= h;
  if (inside) return d;
  const xyxy = new Float32Array(b.length);
  for (let i = 0; i < b.length; i += 2) xyxy[i] = Math.min(w, Math.max(0, b[i]!));
  for (let i = 1; i < b.length; i += 2) xyxy[i] = Math.min(h, Math.max(0, b[i]!));
  return new Detections({ xyxy, scores: d.scores, classIds: d.classIds, trackIds: d.trackIds, frameIndex: d.frameIndex, classNames: d.classNames });
}

/** ByteTrack options from the profile's tracker settings (every knob resolved), at the analysis frame rate. */
export function byteTrackOptions(t: TrackerSettings, fps: number): Partial<ByteTrackOptions> {
  return {
    variant: t.variant,
    box: t.box,
    kalman: t.kalman,
    matchOn: t.match_on,
    fuseScore: t.fuse_score,
    trackThresh: t.track_thresh,
    highThresh: t.high_thresh,
    lowThresh: t.low_thresh ?? -Infinity,
    matchThresh: t.match_thresh,
    lowMatchThresh: t.low_match_thresh,
    trackBuffer: t.track_buffer,
    frameRate: fps,
  };
}

/**
 * Tracks detections over one video or stream with ByteTrack (the profile's tracker settings; frame rate
 * = analysis fps, which scales how long lost tracks are kept). With the tracker disabled the detections
 * pass through without track ids. Feed frames in order, every frame (empty ones too).
 */
export class DetectionTracker {
  private readonly tracker: ByteTrack | undefined;

  constructor(settings: TrackerSettings, fps: number) {
    this.tracker = settings.enabled ? new ByteTrack(byteTrackOptions(settings, fps)) : undefined;
  }

  get enabled(): boolean {
    return this.tracker !== undefined;
  }

  /**
   * The tracks of this frame. With box "track" the tracker reports its Kalman-filtered boxes, which may
   * reach past the picture; with `width` and `height` they are clipped to it, as the detections were, and
   * a box clipped to nothing is dropped.
   */
  update(d: Detections, width?: number, height?: number): Detections {
    if (!this.tracker) return d;
    const t = this.tracker.update(d).withFrameIndex(d.frameIndex).withClassNames(d.classNames);
    return width === undefined || height === undefined ? t : clipDetections(t, width, height).withoutDegenerateBoxes();
  }

  reset(): void {
    this.tracker?.reset();
  }

  /** The tracker's state (null when tracking is off), for a run's journal. */
  state(): ByteTrackState | null {
    return this.tracker?.state() ?? null;
  }

  restore(s: ByteTrackState | null): void {
    if (this.tracker && s) this.tracker.restore(s);
  }
}
