import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { VideoAnalysisError } from "../errors.js";
import type { VideoMetadata } from "./route.js";

const run = promisify(execFile);

interface ProbeStream {
  codec_type?: string;
  width?: number;
  height?: number;
  tags?: Record<string, string>;
  side_data_list?: Array<{ side_data_type?: string; rotation?: number | string }>;
}

/**
 * Reads a video's size and display rotation with ffprobe: what routing needs. Rotation comes from the
 * display matrix (recent ffmpeg) or the `rotate` tag (older files); ffprobe's rotation is
 * counter-clockwise, returned here as clockwise degrees 0..359.
 */
export async function probeVideoSize(file: string): Promise<VideoMetadata> {
  let out: string;
  try {
    ({ stdout: out } = await run("ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_streams", "-of", "json", file], { maxBuffer: 4 << 20 }));
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === "ENOENT") throw new VideoAnalysisError("IO_ERROR", "ffprobe was not found; install ffmpeg (scripts/setup.sh does)", { cause: e });
    throw new VideoAnalysisError("VIDEO_INVALID", `ffprobe cannot read ${file}: ${(err.stderr ?? err.message).trim()}`, { cause: e, details: { file } });
  }
  const stream = (JSON.parse(out) as { streams?: ProbeStream[] }).streams?.[0];
  if (!stream?.width || !stream.height) throw new VideoAnalysisError("VIDEO_INVALID", `${file} has no video stream`, { details: { file } });
  let rotation = 0;
  const side = stream.side_data_list?.find((d) => d.rotation !== undefined);
  if (side) rotation = -Number(side.rotation);
  else if (stream.tags?.rotate) rotation = Number(stream.tags.rotate);
  rotation = ((Math.round(rotation) % 360) + 360) % 360;
  return { width: stream.width, height: stream.height, rotation };
}
