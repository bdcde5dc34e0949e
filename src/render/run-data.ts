import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { MANIFEST_FILE, type Manifest } from "../artifacts/manifest.js";
import { NpzReader } from "../artifacts/npz-reader.js";
import { VideoAnalysisError } from "../errors.js";

/** One detection as drawn: box in the video's pixels. */
export interface Box {
  x1: number;
  y1: number;
  x2: number;
  y2: number;
  classId: number;
  score: number;
  trackId: number;
}

/** A per-frame series (scene, CLIP, depth, flow) on the analysis timeline. */
export interface Timed {
  /** Analysis frame index of each row. */
  frameIndex: Float64Array;
  timestamp: Float64Array;
}

export interface DetectionsData {
  classNames: string[];
  /** Every analysed frame (with or without detections). */
  frames: Timed;
  /** Boxes by analysis frame index. */
  byFrame: Map<number, Box[]>;
  /** Every row, in file order (frame by frame). */
  rows: Box[];
  rowTime: Float64Array;
  rowFrame: Float64Array;
}

/** A per-frame top-k artifact (the scene family's, an image classifier's): its component and top labels. */
export interface SceneData extends Timed {
  component: string;
  /** Top label and its probability per row. */
  label: string[];
  score: Float32Array;
}

export interface ClipData extends Timed {
  prompts: string[];
  /** [rows, prompts] */
  similarity: Float32Array;
  probabilities: Float32Array;
}

/** A map artifact read a row at a time (depth [F, S, S], flow [F-1, 2, S, S]). */
export interface MapData extends Timed {
  reader: NpzReader;
  size: number;
  /** flow only: the frame each row's motion ends at, and its time. */
  nextFrameIndex?: Float64Array;
  nextTimestamp?: Float64Array;
}

/** A run folder as the renderer and the report read it. Missing artifacts are undefined. */
export interface RunData {
  dir: string;
  manifest: Manifest;
  detections?: DetectionsData;
  /** The first top-k artifact (the scene family's when the run has one); `labels` has them all. */
  scene?: SceneData;
  labels: SceneData[];
  clip?: ClipData;
  depth?: MapData;
  flow?: MapData;
  /** Closes the map readers. */
  close(): Promise<void>;
}

const f64 = (a: ArrayLike<number>) => Float64Array.from(a);

/**
 * Reads `dir`'s manifest.json and the artifacts it lists (with the SDK's npz reader). `manifest` given:
 * that one, not the file (a run writing its report before its manifest).
 */
export async function loadRun(dir: string, given?: Manifest): Promise<RunData> {
  let manifest: Manifest;
  const path = join(dir, MANIFEST_FILE);
  try {
    manifest = given ?? (JSON.parse(await readFile(path, "utf8")) as Manifest);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT")
      throw new VideoAnalysisError("NOT_FOUND", `${dir} is not a complete run folder: it has no ${MANIFEST_FILE}; pass the folder \`main\` wrote (--out)`, { details: { file: path } });
    throw new VideoAnalysisError("DATA_LOSS", `cannot read ${path} (${code ?? (e as Error).message}); re-create the run folder`, { details: { file: path }, cause: e });
  }
  if (!manifest || typeof manifest !== "object" || !manifest.video || !manifest.analysis || !Array.isArray(manifest.artifacts)) {
    throw new VideoAnalysisError("DATA_LOSS", `${path} is not a run manifest (no video, analysis or artifacts); re-create the run folder`, { details: { file: path } });
  }
  // Artifacts are known by the arrays the manifest says they hold, not by their component's name: a
  // component of one's own that writes a top-k table (FrameRows, openTopK) is drawn and charted too.
  const having = (...names: string[]) => manifest.artifacts.filter((a) => names.every((n) => a.arrays && n in a.arrays));
  const readers: NpzReader[] = [];
  // The maps are read directly where main wrote them so (output.direct_io, default on): around the page
  // cache, so that a first read finds them on disk.
  const directMaps = manifest.profile?.output?.direct_io !== false;
  const open = async (file: string, maps = false) => {
    const r = await NpzReader.open(join(dir, file), { direct: maps && directMaps });
    readers.push(r);
    return r;
  };
  const data: RunData = { dir, manifest, labels: [], close: async () => void (await Promise.all(readers.map((r) => r.close()))) };
  try {
    for (const a of having("box", "track_id", "class_names").slice(0, 1)) {
      const r = await open(a.path);
      const frame = (await r.array("frame_index")).data;
      const time = (await r.array("timestamp")).data;
      const track = (await r.array("track_id")).data;
      const cls = (await r.array("class_id")).data;
      const score = (await r.array("score")).data;
      const box = (await r.array("box")).data;
      const rows: Box[] = [];
      const byFrame = new Map<number, Box[]>();
      for (let i = 0; i < frame.length; i++) {
        const b: Box = { x1: box[4 * i]!, y1: box[4 * i + 1]!, x2: box[4 * i + 2]!, y2: box[4 * i + 3]!, classId: cls[i]!, score: score[i]!, trackId: track[i]! };
        rows.push(b);
        const f = frame[i]!;
        const list = byFrame.get(f);
        if (list) list.push(b);
        else byFrame.set(f, [b]);
      }
      data.detections = {
        classNames: (await r.strings("class_names")).values,
        frames: { frameIndex: f64((await r.array("frames_index")).data), timestamp: f64((await r.array("frames_timestamp")).data) },
        byFrame,
        rows,
        rowTime: f64(time),
        rowFrame: f64(frame),
      };
    }
    for (const a of having("top_k_labels", "top_k_scores", "frame_index")) {
      const r = await open(a.path);
      const labels = await r.strings("top_k_labels");
      const scores = await r.array("top_k_scores");
      const k = labels.shape[1] ?? 1;
      const n = labels.shape[0] ?? 0;
      data.labels.push({
        component: a.component,
        frameIndex: f64((await r.array("frame_index")).data),
        timestamp: f64((await r.array("timestamp")).data),
        label: Array.from({ length: n }, (_, i) => labels.values[i * k]!),
        score: Float32Array.from({ length: n }, (_, i) => scores.data[i * k]!),
      });
    }
    data.scene = data.labels[0];
    for (const a of having("prompts", "similarity", "probabilities").slice(0, 1)) {
      const r = await open(a.path);
      data.clip = {
        frameIndex: f64((await r.array("frame_index")).data),
        timestamp: f64((await r.array("timestamp")).data),
        prompts: (await r.strings("prompts")).values,
        similarity: Float32Array.from((await r.array("similarity")).data),
        probabilities: Float32Array.from((await r.array("probabilities")).data),
      };
    }
    for (const a of having("depth", "frame_index").slice(0, 1)) {
      const r = await open(a.path, true);
      const { shape } = await r.info("depth");
      data.depth = { reader: r, size: shape[1]!, frameIndex: f64((await r.array("frame_index")).data), timestamp: f64((await r.array("timestamp")).data) };
    }
    for (const a of having("flow", "next_frame_index").slice(0, 1)) {
      const r = await open(a.path, true);
      const { shape } = await r.info("flow");
      data.flow = {
        reader: r,
        size: shape[2]!,
        frameIndex: f64((await r.array("frame_index")).data),
        timestamp: f64((await r.array("timestamp")).data),
        nextFrameIndex: f64((await r.array("next_frame_index")).data),
        nextTimestamp: f64((await r.array("next_timestamp")).data),
      };
    }
  } catch (e) {
    await data.close();
    throw e;
  }
  return data;
}

/** Row of the last entry of a sorted `times` at or before `t` (with a small tolerance), or -1. */
export function rowAtOrBefore(times: ArrayLike<number>, t: number): number {
  let lo = 0;
  let hi = times.length - 1;
  let best = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid]! <= t + 1e-6) {
      best = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  return best;
}
