import { join } from "node:path";
import { VideoAnalysisError } from "../../errors.js";
import { numberFlag, parseCommandArgs, type Command } from "../command.js";

export const reportCommand: Command = {
  name: "report",
  summary: "write a run folder's report.html: one self-contained page with charts, tracks and annotated frames",
  usage: "video-analysis report RUN_DIR [--video V] [--max-side 320] [--quality 70] [--max-frames 60] [--image-cap-mib 4] [--json]",
  async run(argv) {
    const [runDir, ...rest] = argv;
    if (!runDir || runDir.startsWith("-")) throw new VideoAnalysisError("INVALID_ARGUMENT", `RUN_DIR is required\nusage: ${this.usage}`);
    const { values } = parseCommandArgs(this, rest, {
      video: { type: "string" },
      "max-side": { type: "string" },
      quality: { type: "string" },
      "max-frames": { type: "string" },
      "image-cap-mib": { type: "string" },
      json: { type: "boolean", default: false },
    });
    const whole = (flag: string, v: string | undefined, d: number, min: number, max?: number) => {
      const n = numberFlag(flag, v, d, { min, ...(max !== undefined ? { max } : {}) });
      if (!Number.isInteger(n)) throw new VideoAnalysisError("INVALID_ARGUMENT", `--${flag} must be a whole number, got ${v}`);
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
