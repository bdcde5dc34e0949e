import { snakeKeys } from "../../artifacts/manifest.js";
import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../../artifacts/atomic.js";
import { BYTETRACK_VARIANTS, ByteTrack, type ByteTrackOptions, type ByteTrackVariant, type TrackBox } from "../../detections/byte-track.js";
import { Detections } from "../../detections/detections.js";
import { formatMot, parseMot } from "../../detections/mot.js";
import { VideoAnalysisError } from "../../errors.js";
import { numberFlag, parseCommandArgs, required, usageError, type Command } from "../command.js";

function choice<T extends string>(flag: string, value: string | undefined, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!allowed.includes(value as T)) throw usageError(trackCommand, `--${flag} must be ${allowed.join(" or ")}, got "${value}"`);
  return value as T;
}

export const trackCommand: Command = {
  name: "track",
  summary: "run ByteTrack on MOTChallenge detections (det.txt) and write MOTChallenge results",
  usage:
    "video-analysis track --mot-det det.txt --out tracks.txt [--fps 30] [--variant default|python|cpp] [--box detection|track] [--kalman xywh|xyah] " +
    "[--match-on prediction|last_box] [--fuse-score on|off] [--track-thresh 0.5] [--high-thresh T] [--low-thresh T|none] " +
    "[--match-thresh 0.8] [--low-match-thresh 0.5] [--track-buffer 30] [--json]  (scores must be in 0..1; README: Tracking)",
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, {
      "mot-det": { type: "string", value: "FILE", description: "MOTChallenge detections (det.txt: frame,-1,x,y,w,h,score,...)" },
      out: { type: "string", value: "FILE", description: "where to write the tracks in MOTChallenge format" },
      fps: { type: "string", value: "F", description: "the sequence's frame rate, 0.001 to 1000 (scales how long lost tracks are kept; default 30)" },
      variant: { type: "string", value: "default|python|cpp", description: "the tracker's rules: default (Python original's matching, width/height Kalman, detector's boxes), python (ifzhang/ByteTrack exactly), cpp (the C++ deployment)" },
      box: { type: "string", value: "detection|track", description: "boxes written: the matched detection's (default variant) or the Kalman filter's" },
      kalman: { type: "string", value: "xyah|xywh", description: "Kalman state: aspect ratio + height, or width + height" },
      "match-on": { type: "string", value: "prediction|last_box", description: "associate with each track's Kalman prediction or its last box" },
      "fuse-score": { type: "string", value: "on|off", description: "multiply IoU by the detection score in the first association" },
      "track-thresh": { type: "string", value: "T", description: "score splitting high from low detections" },
      "high-thresh": { type: "string", value: "T", description: "score a detection needs to start a track" },
      "low-thresh": { type: "string", value: "T|none", description: "lowest score kept for the second association (none: no floor)" },
      "match-thresh": { type: "string", value: "T", description: "IoU-cost limit of the first association" },
      "low-match-thresh": { type: "string", value: "T", description: "IoU-cost limit of the second (low-score) association" },
      "track-buffer": { type: "string", value: "N", description: "frames (at 30 fps) a lost track is kept" },
      json: { type: "boolean", default: false, description: "print a JSON summary instead of text" },
    });
    const detPath = required(this, "mot-det", values["mot-det"]);
    const outPath = required(this, "out", values.out);
    const variant = choice<ByteTrackVariant>("variant", values.variant, BYTETRACK_VARIANTS) ?? "default";
    const matchOn = choice("match-on", values["match-on"], ["prediction", "last_box"] as const);
    const fuse = choice("fuse-score", values["fuse-score"], ["on", "off"] as const);
    const prob = (flag: string) => (values[flag as "track-thresh"] === undefined ? undefined : numberFlag(flag, values[flag as "track-thresh"], 0, { min: 0, max: 1 }));
    const lowFlag = values["low-thresh"];
    const options: Partial<ByteTrackOptions> = {
      variant,
      frameRate: numberFlag("fps", values.fps, 30, { min: 0.001, max: 1000 }),
      box: choice<TrackBox>("box", values.box, ["detection", "track"]),
      kalman: choice("kalman", values.kalman, ["xyah", "xywh"] as const),
      matchOn,
      fuseScore: fuse === undefined ? undefined : fuse === "on",
      trackThresh: prob("track-thresh"),
      highThresh: prob("high-thresh"),
      lowThresh: lowFlag === "none" ? -Infinity : prob("low-thresh"),
      matchThresh: prob("match-thresh"),
      lowMatchThresh: prob("low-match-thresh"),
      trackBuffer: values["track-buffer"] === undefined ? undefined : numberFlag("track-buffer", values["track-buffer"], 30, { min: 0 }),
    };

    let text: string;
    try {
      text = await readFile(detPath, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw new VideoAnalysisError("NOT_FOUND", `detections file ${detPath} does not exist; pass a MOTChallenge det.txt`);
      throw new VideoAnalysisError("IO_ERROR", `cannot read detections file ${detPath} (${code ?? (e as Error).message}); pass a MOTChallenge det.txt`, { cause: e });
    }
    const { frames, lastFrame } = parseMot(text, { source: detPath });
    for (const [f, d] of frames) {
      const bad = d.scores.findIndex((v) => !(v >= 0 && v <= 1));
      if (bad >= 0) {
        throw new VideoAnalysisError(
          "INVALID_ARGUMENT",
          `${detPath}: frame ${f} has a detection with score ${+d.scores[bad]!.toPrecision(7)}, outside 0..1; the tracker's thresholds are on the ` +
            `0..1 scale: rescale the detector's scores to 0..1 (e.g. divide by the largest) before tracking`,
        );
      }
    }
    const tracker = new ByteTrack(options);

    const t0 = performance.now();
    const chunks: string[] = [];
    const ids = new Set<number>();
    let boxes = 0;
    // Every frame from 1 to the last one, empty frames included: lost tracks age on those too.
    for (let f = 1; f <= lastFrame; f++) {
      const tracks = tracker.update(frames.get(f) ?? Detections.empty(f - 1));
      chunks.push(formatMot(tracks));
      boxes += tracks.length;
      for (const id of tracks.trackIds!) ids.add(id);
    }
    const elapsed = performance.now() - t0;
    // Written under a temporary name then renamed, so a failed run never leaves a partial file.
    await writeFileAtomic(outPath, chunks.join(""));
    const summary = {
      detections: detPath,
      out: outPath,
      variant,
      frames: lastFrame,
      track_boxes: boxes,
      tracks: ids.size,
      elapsed_ms: Math.round(elapsed * 100) / 100,
      frames_per_second: Math.round(lastFrame / (elapsed / 1000)),
      // The settings in the profile's words (snake_case); lowThresh -Infinity (no floor) as null: JSON has no infinity.
      options: snakeKeys({ ...tracker.options, lowThresh: Number.isFinite(tracker.options.lowThresh) ? tracker.options.lowThresh : null }),
    };
    if (values.json) console.log(JSON.stringify(summary));
    else console.log(`${lastFrame} frames, ${boxes} track boxes, ${ids.size} tracks (${variant} variant, ${tracker.options.box} boxes) -> ${outPath} in ${summary.elapsed_ms} ms`);
    return 0;
  },
};
