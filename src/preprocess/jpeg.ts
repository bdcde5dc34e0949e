import sharp from "sharp";
import { VideoAnalysisError } from "../errors.js";
import type { RgbImage } from "./resize.js";

/** An encoded image as track D sends it, with the size the server will decode it to. */
export interface EncodedImage {
  bytes: Uint8Array;
  width: number;
  height: number;
}

/**
 * Encodes an RGB frame as JPEG for track D (the server decodes it on the GPU). 4:2:0 chroma and no
 * metadata: what a camera or ffmpeg gives. `quality` 1..100 (the profile's jpeg_quality).
 */
export async function encodeJpeg(image: RgbImage, quality: number): Promise<EncodedImage> {
  if (!Number.isInteger(quality) || quality < 1 || quality > 100) throw new RangeError(`JPEG quality must be an integer in 1..100, got ${quality}`);
  const buf = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: image.channels as 3 } })
    .jpeg({ quality, chromaSubsampling: "4:2:0" })
    .toBuffer();
  return { bytes: new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength), width: image.width, height: image.height };
}

/**
 * An image file's bytes as they are, for track D (`detect` sends files untouched), with the size the
 * server decodes it to: DALI's `fn.decoders.image` applies the EXIF orientation (`adjust_orientation`,
 * on by default; the stand-in does too), as track B's decode does (src/preprocess/decode-image.ts), so a
 * file whose orientation turns it by 90 degrees comes out with width and height swapped.
 */
export async function jpegPassThrough(bytes: Uint8Array, what: string): Promise<EncodedImage> {
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>["metadata"]>>;
  try {
    meta = await sharp(bytes).metadata();
  } catch (e) {
    throw new VideoAnalysisError("INVALID_ARGUMENT", `${what} is not an image sharp can read (${(e as Error).message}); pass a JPEG file`, { cause: e });
  }
  if (meta.format !== "jpeg" || !meta.width || !meta.height) {
    throw new VideoAnalysisError("INVALID_ARGUMENT", `${what} is ${meta.format ?? "not an image"}, not a JPEG: track D (input: jpeg) decodes JPEG only; convert it or use input: pixels`);
  }
  const oriented = meta.autoOrient ?? { width: meta.width, height: meta.height };
  return { bytes, width: oriented.width, height: oriented.height };
}
