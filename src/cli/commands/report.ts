import { join } from "node:path";
import { numberFlag, parseCommandArgs, usageError, type Command } from "../command.js";

export const reportCommand: Command = {
  name: "report",
  summary: "write a run folder's report.html: one self-contained page with charts, tracks and annotated frames",
  usage: "video-analysis report RUN_DIR [--video V] [--max-side 320] [--quality 70] [--max-frames 60] [--image-cap-mib 4] [--json]",
  async run(argv) {
    const { values, positionals } = parseCommandArgs(this, argv, {
      video: { type: "string", value: "FILE", description: "the run's video, when it is no longer where the manifest says (default: the manifest's path)" },
      "max-side": { type: "string", value: "PX", description: "longest side of the frame thumbnails, 16 to 4096 pixels (default 320)" },
      quality: { type: "string", value: "Q", description: "JPEG quality of every thumbnail, 1 to 100 (default 70)" },
      "max-frames": { type: "string", value: "N", description: "most frames the frame picker offers, spread over the run (default 60)" },
      "image-cap-mib": { type: "string", value: "MIB", description: "cap on all the page's images; picker frames are thinned to fit (default 4)" },
      json: { type: "boolean", default: false, description: "print one JSON object with the report's path and sizes instead of the text line" },
    }, true);
    const [runDir, ...extra] = positionals;
    if (runDir === undefined) throw usageError(this, "RUN_DIR is required");
    if (extra.length > 0) throw usageError(this, `one RUN_DIR only, got also "${extra.join('", "')}"`);
    const whole = (flag: string, v: string | undefined, d: number, min: number, max?: number) => {
      const n = numberFlag(flag, v, d, { min, ...(max !== undefined ? { max } : {}) });
      if (!Number.isInteger(n)) throw usageError(this, `--${flag} must be a whole number, got "${v}"`);
      return n;
    };
    const { writeReport } = await import("../../report/report.js");
    const r = await writeReport(runDir, {
      maxSide: whole("max-side", values["max-side"], 320, 16, 4096),
      quality: whole("quality", values.quality, 70, 1, 100),
      maxPickerFrames: whole("max-frames", values["max-frames"], 60, 0),
      imageBytesCap: Math.round(numberFlag("image-cap-mib", values["image-cap-mib"], 4, { min: 0.01 }) * (1 << 20)),
      ...(values.video ? { video: values.video } : {}),
    });
    if (values.json) console.log(JSON.stringify({ path: join(runDir, r.file), ...r }));
    else console.log(`${join(runDir, r.file)}: ${(r.bytes / 1024).toFixed(0)} KiB (${r.thumbnails.picker_frames} frames, ${r.thumbnails.track_thumbnails} tracks, ${r.thumbnails.depth_thumbnails} depth maps)${r.no_frames ? `; no frames: ${r.no_frames}` : ""}`);
    return 0;
  },
};
