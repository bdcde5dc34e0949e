import { readFileSync } from "node:fs";
import { Detections } from "../../src/detections/detections.js";
import { testdata } from "../support/testdata.js";

/** ByteTrack-cpp's palace reference: YOLOX detections and the C++ tracker's output, by frame. */
export interface Palace {
  fps: number;
  trackBuffer: number;
  /** Detections per frame, frame ids from 0 (as Detections.frameIndex). */
  frames: Detections[];
  /** Reference tracks per frame id: track id -> [x, y, width, height]. */
  tracks: Map<number, Map<number, [number, number, number, number]>>;
}

interface Row {
  frame_id: string;
  prob?: string;
  track_id?: string;
  x: string;
  y: string;
  width: string;
  height: string;
}

export function loadPalace(): Palace {
  const det = JSON.parse(readFileSync(testdata("bytetrack", "palace_detections.json"), "utf8")) as { fps: number; track_buffer: number; results: Row[] };
  const ref = JSON.parse(readFileSync(testdata("bytetrack", "palace_tracks.json"), "utf8")) as { results: Row[] };
  const byFrame = new Map<number, Row[]>();
  for (const r of det.results) {
    const f = Number(r.frame_id);
    if (!byFrame.has(f)) byFrame.set(f, []);
    byFrame.get(f)!.push(r);
  }
  const last = Math.max(...byFrame.keys());
  const frames: Detections[] = [];
  for (let f = 0; f <= last; f++) {
    const rows = byFrame.get(f) ?? [];
    const n = rows.length;
    const xyxy = new Float32Array(4 * n);
    const scores = new Float32Array(n);
    rows.forEach((r, i) => {
      const x = Number(r.x);
      const y = Number(r.y);
      xyxy.set([x, y, x + Number(r.width), y + Number(r.height)], 4 * i);
      scores[i] = Number(r.prob);
    });
    frames.push(new Detections({ xyxy, scores, classIds: new Int32Array(n), frameIndex: f }));
  }
  const tracks = new Map<number, Map<number, [number, number, number, number]>>();
  for (const r of ref.results) {
    const f = Number(r.frame_id);
    if (!tracks.has(f)) tracks.set(f, new Map());
    tracks.get(f)!.set(Number(r.track_id), [Number(r.x), Number(r.y), Number(r.width), Number(r.height)]);
  }
  return { fps: det.fps, trackBuffer: det.track_buffer, frames, tracks };
}

/** Frames whose track id sets differ, and the largest coordinate difference over the frames that agree. */
export function compareWithReference(palace: Palace, output: Detections[]): { idMismatches: number[]; maxError: number; boxes: number } {
  const idMismatches: number[] = [];
  let maxError = 0;
  let boxes = 0;
  for (const d of output) {
    const ref = palace.tracks.get(d.frameIndex) ?? new Map();
    const ids = [...(d.trackIds ?? [])].sort((a, b) => a - b);
    const refIds = [...ref.keys()].sort((a, b) => a - b);
    if (ids.join() !== refIds.join()) {
      idMismatches.push(d.frameIndex);
      continue;
    }
    for (let i = 0; i < d.length; i++) {
      const [x1, y1, x2, y2] = d.box(i);
      const r = ref.get(d.trackIds![i]!)!;
      const mine = [x1, y1, x2 - x1, y2 - y1];
      for (let k = 0; k < 4; k++) maxError = Math.max(maxError, Math.abs(mine[k]! - r[k]!));
      boxes++;
    }
  }
  return { idMismatches, maxError, boxes };
}
