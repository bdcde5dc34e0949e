import { readFile } from "node:fs/promises";
import { writeFileAtomic } from "../../artifacts/atomic.js";
import { ByteTrack, type ByteTrackOptions, type ByteTrackVariant } from "../../detections/byte-track.js";
import { Detections } from "../../detections/detections.js";
import { formatMot, parseMot } from "../../detections/mot.js";
import { VideoAnalysisError } from "../../errors.js";
import { numberFlag, parseCommandArgs, required, usageError, type Command } from "../command.js";

export const trackCommand: Command = {
  name: "track",
  summary: "run ByteTrack on MOTChallenge detections (det.txt) and write MOTChallenge results",
  usage:
    "video-analysis track --mot-det det.txt --out tracks.txt [--fps 30] [--variant cpp|python] [--track-thresh 0.5] " +
    "[--new-track-thresh T] [--low-thresh T] [--match-thresh 0.8] [--track-buffer 30] [--json]",
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, {
      "mot-det": { type: "string", value: "FILE", description: "MOTChallenge detections (det.txt: frame,-1,x,y,w,h,score,...)" },
      out: { type: "string", value: "FILE", description: "where to write the tracks in MOTChallenge format" },
      fps: { type: "string", value: "F", description: "the sequence's frame rate, 0.001 to 1000 (scales how long lost tracks are kept; default 30)" },
      variant: { type: "string", value: "cpp|python", description: "ByteTrack's C++ deployment rules (default) or the Python original's (score fusion, 0.1 floor)" },
      "track-thresh": { type: "string", value: "T", description: "score splitting high from low detections (default 0.5)" },
      "new-track-thresh": { type: "string", value: "T", description: "score a detection needs to start a track (profile key high_thresh; default 0.6)" },
      "low-thresh": { type: "string", value: "T", description: "lowest score kept for the second association (python variant; default 0.1)" },
      "match-thresh": { type: "string", value: "T", description: "IoU-cost limit of the first association (default 0.8)" },
      "track-buffer": { type: "string", value: "N", description: "frames (at 30 fps) a lost track is kept (default 30)" },
      json: { type: "boolean", default: false, description: "print a JSON summary instead of text" },
    });
    const detPath = required(this, "mot-det", values["mot-det"]);
    const outPath = required(this, "out", values.out);
    const variant = (values.variant ?? "cpp") as ByteTrackVariant;
    if (variant !== "python" && variant !== "cpp") throw usageError(this, `--variant must be python or cpp, got "${variant}"`);
    const options: Partial<ByteTrackOptions> = { variant, frameRate: numberFlag("fps", values.fps, 30, { min: 0.001, max: 1000 }) };
    if (values["track-thresh"] !== undefined) options.trackThresh = numberFlag("track-thresh", values["track-thresh"], 0.5, { min: 0, max: 1 });
    if (values["new-track-thresh"] !== undefined) options.newTrackThresh = numberFlag("new-track-thresh", values["new-track-thresh"], 0.6, { min: 0, max: 1 });
    if (values["low-thresh"] !== undefined) options.lowThresh = numberFlag("low-thresh", values["low-thresh"], 0.1, { min: 0, max: 1 });
    if (values["match-thresh"] !== undefined) options.matchThresh = numberFlag("match-thresh", values["match-thresh"], 0.8, { min: 0, max: 1 });
    if (values["track-buffer"] !== undefined) options.trackBuffer = numberFlag("track-buffer", values["track-buffer"], 30, { min: 0 });

    let text: string;
    try {
      text = await readFile(detPath, "utf8");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw new VideoAnalysisError("NOT_FOUND", `detections file ${detPath} does not exist; pass a MOTChallenge det.txt`);
      throw new VideoAnalysisError("IO_ERROR", `cannot read detections file ${detPath} (${code ?? (e as Error).message}); pass a MOTChallenge det.txt`, { cause: e });
    }
    const { frames, lastFrame } = parseMot(text, { source: detPath });
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
      options: tracker.options,
    };
    if (values.json) console.log(JSON.stringify(summary));
    else console.log(`${lastFrame} frames, ${boxes} track boxes, ${ids.size} tracks (${variant} variant) -> ${outPath} in ${summary.elapsed_ms} ms`);
    return 0;
  },
};
