/** Track D's client side of the JPEG path: the size the server decodes a file to, and the refusals. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import sharp from "sharp";
import { VideoAnalysisError } from "../../src/errors.js";
import { encodeJpeg, jpegPassThrough } from "../../src/preprocess/jpeg.js";
import { testdata } from "../support/testdata.js";

test("jpegPassThrough gives the upright size, as DALI decodes it (EXIF orientation applied), and the bytes untouched", async () => {
  const bus = testdata("images", "bus.jpg");
  for (const [orientation, turn, stored] of [[1, 0, [810, 1080]], [3, 180, [810, 1080]], [6, 270, [1080, 810]], [8, 90, [1080, 810]]] as const) {
    const bytes = new Uint8Array(await sharp(bus).rotate(turn).jpeg({ quality: 90 }).withMetadata({ orientation }).toBuffer());
    const meta = await sharp(bytes).metadata();
    assert.deepEqual([meta.width, meta.height, meta.orientation], [...stored, orientation]);
    const file = await jpegPassThrough(bytes, `o${orientation}.jpg`);
    assert.deepEqual([file.width, file.height], [810, 1080], `orientation ${orientation}`);
    assert.equal(file.bytes, bytes);
  }
});

test("jpegPassThrough refuses what track D's decoder would not take, with a coded error", async () => {
  const png = new Uint8Array(readFileSync(testdata("images", "clip_diagram.png")));
  await assert.rejects(jpegPassThrough(png, "clip_diagram.png"), (e: unknown) => e instanceof VideoAnalysisError && e.code === "INVALID_ARGUMENT" && /is png, not a JPEG/.test(e.message));
  await assert.rejects(jpegPassThrough(new Uint8Array([1, 2, 3]), "junk.jpg"), (e: unknown) => e instanceof VideoAnalysisError && e.code === "INVALID_ARGUMENT" && /junk\.jpg is not an image/.test(e.message));
});

test("encodeJpeg: 4:2:0, no metadata, the frame's size; quality checked", async () => {
  const frame = { width: 64, height: 48, channels: 3, data: new Uint8Array(64 * 48 * 3).map((_, i) => (i * 7) % 256) };
  const jpeg = await encodeJpeg(frame, 90);
  const meta = await sharp(jpeg.bytes).metadata();
  assert.deepEqual([meta.format, meta.width, meta.height, meta.chromaSubsampling, meta.orientation], ["jpeg", 64, 48, "4:2:0", undefined]);
  assert.deepEqual([jpeg.width, jpeg.height], [64, 48]);
  await assert.rejects(encodeJpeg(frame, 0), RangeError);
});
