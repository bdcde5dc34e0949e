// Small media files made with ffmpeg in a temporary folder, for the video tests.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export function tempDir(prefix = "va-video-"): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Runs ffmpeg quietly; throws with its stderr when it fails. */
export function ffmpegRun(args: string[]): void {
  execFileSync("ffmpeg", ["-nostdin", "-hide_banner", "-loglevel", "error", "-y", ...args], { stdio: ["ignore", "ignore", "pipe"] });
}

export function ffprobeJson(path: string, entries: string): unknown {
  const out = execFileSync("ffprobe", ["-v", "error", "-of", "json", ...entries.split(" "), path], { encoding: "utf8" });
  return JSON.parse(out);
}

/** An H.264 test pattern video: `size` WxH, `rate` fps, `seconds` long. */
export function makeVideo(
  dir: string,
  name: string,
  opts: { size?: string; rate?: number; seconds?: number; extra?: string[]; pattern?: string } = {},
): string {
  const { size = "320x240", rate = 10, seconds = 2, extra = [], pattern = "testsrc" } = opts;
  const out = join(dir, name);
  ffmpegRun([
    "-f", "lavfi", "-i", `${pattern}=size=${size}:rate=${rate}`,
    "-t", String(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", ...extra, out,
  ]);
  return out;
}

/** Keeps the first `fraction` of a file's bytes. */
export function truncateCopy(src: string, dst: string, fraction: number): string {
  const buf = readFileSync(src);
  writeFileSync(dst, buf.subarray(0, Math.floor(buf.length * fraction)));
  return dst;
}

/** Decodes every source frame with plain ffmpeg (autorotation on) to rgb24: the reference picture. */
export function referenceFrames(path: string, width: number, height: number, flags = "area", extraInput: string[] = []): Buffer[] {
  const raw = execFileSync(
    "ffmpeg",
    [
      "-nostdin", "-loglevel", "error", ...extraInput, "-i", path,
      "-vf", `scale=${width}:${height}:flags=${flags},format=rgb24`, "-fps_mode", "passthrough",
      "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1",
    ],
    { maxBuffer: 1 << 30 },
  );
  const size = width * height * 3;
  const frames: Buffer[] = [];
  for (let off = 0; off + size <= raw.length; off += size) frames.push(raw.subarray(off, off + size));
  return frames;
}

/** Mean absolute difference of two byte arrays of the same length. */
export function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`lengths differ: ${a.length} vs ${b.length}`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i]! - b[i]!);
  return s / a.length;
}

/** Makes `src` look like a phone video held upright: a display matrix of 90 degrees. */
export function makeRotated(src: string, dst: string): string {
  const help = execFileSync("ffmpeg", ["-hide_banner", "-h", "full"], { encoding: "utf8", maxBuffer: 64 << 20 });
  if (help.includes("display_rotation")) ffmpegRun(["-display_rotation", "90", "-i", src, "-c", "copy", dst]); // ffmpeg >= 6
  else ffmpegRun(["-i", src, "-c", "copy", "-metadata:s:v", "rotate=90", dst]); // ffmpeg 5.x turns the tag into a matrix
  return dst;
}
