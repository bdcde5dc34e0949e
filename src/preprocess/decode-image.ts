import { existsSync } from "node:fs";
import sharp from "sharp";
import { VideoAnalysisError } from "../errors.js";
import type { RgbImage } from "./resize.js";

/**
 * Decodes an image file (JPEG, PNG, WebP, ...) to 8-bit RGB, interleaved, rows top to bottom, with
 * the pixels cv2.imread gives (as Ultralytics reads images): the EXIF orientation applied, an embedded
 * ICC profile ignored (no colour conversion), alpha dropped, greyscale expanded to three equal
 * channels. JPEGs go through libjpeg-turbo, the decoder OpenCV uses too; on the standard test images
 * the pixels are identical to cv2.imread's.
 *
 * @example
 * const image = await readImageRgb("bus.jpg"); // rgb24, as cv2.imread reads it (then BGR to RGB)
 * console.log(image.width, image.height, image.data.length); // 810 1080 2624400
 */
export async function readImageRgb(path: string): Promise<RgbImage> {
  if (!existsSync(path)) throw new VideoAnalysisError("NOT_FOUND", `image ${path} does not exist; pass the path of a JPEG or PNG file`);
  let out: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    out = await sharp(path, { autoOrient: true, ignoreIcc: true }).removeAlpha().toColourspace("srgb").raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new VideoAnalysisError("INVALID_ARGUMENT", `could not decode ${path} as an image (${(e as Error).message}); pass a JPEG, PNG or WebP file`, { cause: e });
  }
  const { width, height, channels } = out.info;
  const src = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.byteLength);
  if (channels === 3) return { width, height, channels: 3, data: src };
  // Defensive: libvips should always give sRGB here, but expand or trim whatever arrives.
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < width * height; i++) {
    for (let c = 0; c < 3; c++) data[i * 3 + c] = src[i * channels + (channels === 1 ? 0 : Math.min(c, channels - 1))]!;
  }
  return { width, height, channels: 3, data };
}
