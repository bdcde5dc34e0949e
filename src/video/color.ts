import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { VideoAnalysisError } from "../errors.js";
import { ffmpegFileUrl, ffprobePath } from "./ffmpeg-tools.js";

/** The luma/chroma matrix that turns a video's Y'CbCr into R'G'B' (the families x264 and players know). */
export type YuvMatrix = "bt601" | "bt709" | "bt2020";

/**
 * How a video's pixels are to be read as colours: ffprobe's tags (absent when the file states none) and
 * the matrix they mean. Untagged video gets BT.601, as ffmpeg's swscale assumes when it converts it to
 * RGB (so a colour drawn into the YUV planes decodes back to the same RGB through ffmpeg).
 */
export interface VideoColor {
  matrix: YuvMatrix;
  /** ffprobe's color_space, color_primaries, color_transfer and color_range, when stated. */
  tags: { colorSpace?: string; colorPrimaries?: string; colorTransfer?: string; colorRange?: string };
}

const run = promisify(execFile);

/** The matrix a color_space tag names (ffmpeg's names). */
export function matrixOf(colorSpace: string | undefined): YuvMatrix {
  if (colorSpace === "bt709") return "bt709";
  if (colorSpace === "bt2020nc" || colorSpace === "bt2020c") return "bt2020";
  return "bt601";
}

/** The colour tags of every video stream of `path`, by stream index (one short ffprobe, no decoding). */
export async function probeColors(path: string): Promise<Map<number, VideoColor>> {
  let out: string;
  try {
    ({ stdout: out } = await run(ffprobePath(), [
      "-v", "error", "-select_streams", "v",
      "-show_entries", "stream=index,color_space,color_primaries,color_transfer,color_range", "-of", "json", ffmpegFileUrl(path),
    ]));
  } catch (e) {
    throw new VideoAnalysisError("IO_ERROR", `ffprobe could not read the colour tags of ${path} (${(e as Error).message.split("\n")[0]}); check the file, or install ffmpeg / set FFPROBE_PATH`, {
      details: { file: path },
    });
  }
  const colors = new Map<number, VideoColor>();
  for (const s of (JSON.parse(out) as { streams?: Array<Record<string, string | number>> }).streams ?? []) {
    // "unknown" and "reserved" say nothing: left out, so the output is not tagged with them either.
    const tag = (k: string) => (typeof s[k] === "string" && s[k] !== "unknown" && s[k] !== "reserved" ? (s[k] as string) : undefined);
    const tags: VideoColor["tags"] = {};
    if (tag("color_space")) tags.colorSpace = tag("color_space");
    if (tag("color_primaries")) tags.colorPrimaries = tag("color_primaries");
    if (tag("color_transfer")) tags.colorTransfer = tag("color_transfer");
    if (tag("color_range")) tags.colorRange = tag("color_range");
    colors.set(Number(s.index), { matrix: matrixOf(tags.colorSpace), tags });
  }
  return colors;
}
