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

/** The matrix a color_space tag names (ffmpeg's names). */
export function matrixOf(colorSpace: string | undefined): YuvMatrix {
  if (colorSpace === "bt709") return "bt709";
  if (colorSpace === "bt2020nc" || colorSpace === "bt2020c") return "bt2020";
  return "bt601";
}

/** The colour of one stream as ffprobe describes it (its JSON fields). @internal */
export function colorOfStream(s: Record<string, unknown>): VideoColor {
  // "unknown" and "reserved" say nothing: left out, so the output is not tagged with them either.
  const tag = (k: string) => (typeof s[k] === "string" && s[k] !== "unknown" && s[k] !== "reserved" ? s[k] : undefined);
  const tags: VideoColor["tags"] = {};
  for (const [field, key] of [["color_space", "colorSpace"], ["color_primaries", "colorPrimaries"], ["color_transfer", "colorTransfer"], ["color_range", "colorRange"]] as const) {
    const t = tag(field);
    if (t) tags[key] = t;
  }
  return { matrix: matrixOf(tags.colorSpace), tags };
}
