// One real run for the render and report tests: `main` (ModelManager.run) with profiles/embedded_cpu.yaml on
// the people video, the detector the real YOLO11n int8 640 with ByteTrack on, 2 fps for the first 20 s.
// A person walks in at about 8 s; nobody is in view before 5 s.
import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { ModelManager, type RunResult } from "../../src/pipeline/model-manager.js";
import { repoRoot, skipUnlessTestdata, testdata } from "../support/testdata.js";
import { EMBEDDED_PROFILE, loadNpz } from "../pipeline/support.js";

export const VIDEO = testdata("video", "people_768x432_10fps.mp4");
export const skip = skipUnlessTestdata("video", "people_768x432_10fps.mp4") || skipUnlessTestdata("models", "yolo11n_int8_640.onnx");
export const FPS = 2;
export const FRAMES = 40;

export async function peopleRun(out: string): Promise<RunResult> {
  const mm = await ModelManager.fromProfile(EMBEDDED_PROFILE, {
    overrides: { analysis: { fps: FPS }, backend: { embedded: { models: { yolo11n_640: testdata("models", "yolo11n_int8_640.onnx") } } } },
  });
  try {
    return await mm.run(VIDEO, { out, maxFrames: FRAMES });
  } finally {
    await mm.close();
  }
}

/** numpy's view of the run's detections: per-row arrays. */
export async function detectionsNpz(runDir: string) {
  const d = await loadNpz(join(runDir, "core_object_detections", "detections.npz"));
  const n = d.score!.values.length;
  return {
    rows: Array.from({ length: n }, (_, i) => ({
      frame: d.frame_index!.values[i] as number,
      t: d.timestamp!.values[i] as number,
      track: d.track_id!.values[i] as number,
      cls: d.class_id!.values[i] as number,
      score: d.score!.values[i] as number,
      box: (d.box!.values as number[]).slice(4 * i, 4 * i + 4),
    })),
    frames: d.frames_index!.values as number[],
    times: d.frames_timestamp!.values as number[],
    classNames: d.class_names!.values as string[],
  };
}

/** Every frame of a video (or its first `count`) decoded by plain ffmpeg to rgb24. */
export function decodeAll(path: string, width: number, height: number, count?: number): Buffer[] {
  const first = count === undefined ? [] : ["-frames:v", String(count)];
  const raw = execFileSync("ffmpeg", ["-nostdin", "-loglevel", "error", "-i", path, ...first, "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], { maxBuffer: 1 << 30 });
  const size = width * height * 3;
  const frames: Buffer[] = [];
  for (let off = 0; off + size <= raw.length; off += size) frames.push(raw.subarray(off, off + size));
  return frames;
}

/** ffprobe's count of decoded frames, duration, codec, pixel format and colour tags. */
export function probe(path: string): { codec: string; pixFmt: string; frames: number; duration: number; width: number; height: number; rate: string; colorSpace: string; colorRange: string } {
  const j = JSON.parse(
    execFileSync("ffprobe", ["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=codec_name,pix_fmt,nb_read_frames,width,height,r_frame_rate,color_space,color_range:format=duration", "-of", "json", path], { encoding: "utf8" }),
  ) as { streams: Array<Record<string, string | number>>; format: { duration: string } };
  const s = j.streams[0]!;
  return {
    codec: String(s.codec_name), pixFmt: String(s.pix_fmt), frames: Number(s.nb_read_frames), duration: Number(j.format.duration), width: Number(s.width), height: Number(s.height), rate: String(s.r_frame_rate),
    colorSpace: String(s.color_space), colorRange: String(s.color_range),
  };
}

/** test-artifacts/ at the repository's root (gitignored): what a test run leaves to look at (screenshots, frames). */
export function artifactsDir(): string {
  const dir = join(repoRoot, "test-artifacts");
  mkdirSync(dir, { recursive: true });
  return dir;
}
