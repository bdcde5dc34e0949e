// Drawing on yuv420p frames (what `render` does): colours, blends and insets checked the way a player sees
// them, by ffmpeg converting the planes to rgb24 (no encoder in between). The tolerance is what yuv420p
// itself gives: Y, U and V rounded to integers (up to about 1.6 levels of R, G or B) plus swscale's
// fixed-point yuv -> rgb (about 1 more): 3 levels. Where nothing is drawn the bytes must not change at all.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { after, test } from "node:test";
import { depthImage, flowImage } from "../../src/render/annotate.js";
import { hsvToRgb, trackColor, type Rgb } from "../../src/render/colors.js";
import { GlyphFont } from "../../src/render/font.js";
import { blit, fillRect, shadedToRgb, strokeRect, type RgbCanvas } from "../../src/render/raster.js";
import { rgbToYuv, shadedToYuv, toYuv, type YuvCanvas } from "../../src/render/yuv.js";
import type { YuvMatrix } from "../../src/video/color.js";
import { probeVideoColor } from "../../src/video/metadata.js";
import { tempDir } from "../video/fixtures.js";
import { readFrames } from "../../src/video/frame-reader.js";
import { skipUnlessTestdata, testdata } from "../support/testdata.js";

const TOLERANCE = 3;
const TAG: Record<YuvMatrix, string> = { bt601: "smpte170m", bt709: "bt709", bt2020: "bt2020nc" };

function canvas(w: number, h: number, matrix: YuvMatrix, rgb: Rgb = [90, 110, 130]): YuvCanvas {
  const c: YuvCanvas = { format: "yuv420p", width: w, height: h, data: new Uint8Array(w * h + 2 * Math.ceil(w / 2) * Math.ceil(h / 2)), matrix };
  fillRect(c, 0, 0, w, h, rgb);
  return c;
}

/** The canvas as ffmpeg shows it: yuv420p (limited range, tagged with the matrix) to rgb24. */
function toRgb(c: YuvCanvas, matrix = c.matrix): Buffer {
  return execFileSync("ffmpeg", ["-nostdin", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", `${c.width}x${c.height}`, "-color_range", "tv", "-colorspace", TAG[matrix], "-i", "pipe:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"], { input: c.data });
}

const at = (rgb: Uint8Array, w: number, x: number, y: number) => [rgb[(y * w + x) * 3]!, rgb[(y * w + x) * 3 + 1]!, rgb[(y * w + x) * 3 + 2]!];
const off = (a: readonly number[], b: readonly number[]) => Math.max(...a.map((v, i) => Math.abs(v - b[i]!)));

test("every track colour drawn as a box edge in yuv420p decodes to itself within yuv420p's rounding; outside the box nothing changes", () => {
  // The 20 colours' boxes in a 5 x 4 grid of 32 x 32 cells, one picture per matrix.
  const W = 160;
  const H = 128;
  for (const matrix of ["bt601", "bt709", "bt2020"] as const) {
    const bare = toRgb(canvas(W, H, matrix));
    const c = canvas(W, H, matrix);
    // Odd starts: the edge's first and last chroma rows are covered in part, the middle one whole.
    for (let id = 0; id < 20; id++) strokeRect(c, (id % 5) * 32 + 7, Math.floor(id / 5) * 32 + 7, (id % 5) * 32 + 25, Math.floor(id / 5) * 32 + 25, 3, trackColor(id, 0));
    const rgb = toRgb(c);
    for (let id = 0; id < 20; id++) {
      const color = trackColor(id, 0);
      const x0 = (id % 5) * 32;
      const y0 = Math.floor(id / 5) * 32;
      assert.ok(off(at(rgb, W, x0 + 16, y0 + 8), color) <= TOLERANCE, `${matrix} track ${id}: ${at(rgb, W, x0 + 16, y0 + 8)} for ${color}`);
      // Pixels whose chroma block the box does not touch: byte for byte the undrawn picture's.
      for (let y = 0; y < 32; y++)
        for (let x = 0; x < 32; x++) {
          const touched = x >= 6 && x < 26 && y >= 6 && y < 26 && !(x >= 12 && x < 20 && y >= 12 && y < 20);
          if (!touched) assert.deepEqual(at(rgb, W, x0 + x, y0 + y), at(bare, W, x0 + x, y0 + y), `${matrix} track ${id}: (${x}, ${y}) changed`);
        }
    }
  }
});

test("the colour matrix matters: a colour drawn for BT.709 read as BT.601 is off by more than the tolerance", () => {
  const color = trackColor(0, 0);
  const c = canvas(8, 8, "bt709");
  fillRect(c, 0, 0, 8, 8, color);
  assert.ok(off(at(toRgb(c), 8, 4, 4), color) <= TOLERANCE);
  assert.ok(off(at(toRgb(c, "bt601"), 8, 4, 4), color) > 3 * TOLERANCE);
});

test("a translucent fill and a glyph blend in yuv420p as they would in RGB", async () => {
  const bg: Rgb = [200, 60, 40];
  const c = canvas(64, 32, "bt601", bg);
  fillRect(c, 0, 16, 64, 16, [0, 0, 0], 0.6);
  const rgb = toRgb(c);
  assert.ok(off(at(rgb, 64, 30, 24), bg.map((v) => v * 0.4)) <= TOLERANCE, `${at(rgb, 64, 30, 24)}`);
  // A glyph's solid stroke takes the text colour; its box around the stroke keeps the background.
  const font = await GlyphFont.create(28);
  const t = canvas(64, 40, "bt601", [0, 0, 0]);
  font.draw(t, "I", 20, 2, [255, 255, 255]);
  const trgb = toRgb(t);
  const lit = Array.from({ length: 40 * 64 }, (_, i) => at(trgb, 64, i % 64, Math.floor(i / 64))).filter((p) => Math.min(...p) >= 255 - TOLERANCE);
  assert.ok(lit.length >= 20, `${lit.length} white pixels in the glyph`);
  assert.deepEqual(at(trgb, 64, 2, 2), at(toRgb(canvas(64, 40, "bt601", [0, 0, 0])), 64, 2, 2));
});

test("an inset converted once (toYuv) and blitted decodes to its pixels within the tolerance; odd coordinates are refused", () => {
  // Colours constant over each 2x2 block, so chroma subsampling loses nothing.
  const w = 10;
  const h = 6;
  const img: RgbCanvas = { width: w, height: h, data: new Uint8Array(w * h * 3) };
  const color = (x: number, y: number): Rgb => trackColor((x >> 1) + 5 * (y >> 1), 0);
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) img.data.set(color(x, y), (y * w + x) * 3);
  for (const matrix of ["bt601", "bt709"] as const) {
    const c = canvas(20, 12, matrix);
    blit(c, toYuv(img, matrix), 4, 2);
    const rgb = toRgb(c);
    for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) assert.ok(off(at(rgb, 20, x + 4, y + 2), color(x, y)) <= TOLERANCE, `${matrix} (${x}, ${y})`);
    assert.throws(() => blit(c, toYuv(img, matrix), 3, 2), RangeError);
  }
  // An rgb24 image blitted onto yuv420p is converted on the way.
  const c = canvas(20, 12, "bt601");
  blit(c, img, 4, 2);
  assert.ok(off(at(toRgb(c), 20, 5, 3), color(1, 1)) <= TOLERANCE);
});

test("odd sizes: a 5x3 canvas has 3x2 chroma samples, and a fill of its last column reaches its last chroma column", () => {
  const c = canvas(5, 3, "bt601", [0, 0, 0]);
  assert.equal(c.data.length, 5 * 3 + 2 * 3 * 2);
  fillRect(c, 4, 0, 1, 3, [255, 255, 255]);
  const [y, u, v] = rgbToYuv([255, 255, 255], "bt601");
  assert.equal(c.data[4], Math.round(y));
  // The last chroma column covers one pixel column only: covered whole.
  assert.equal(c.data[15 + 2], Math.round(u));
  assert.equal(c.data[15 + 6 + 2], Math.round(v));
  assert.ok(off(at(toRgb(c), 5, 4, 1), [255, 255, 255]) <= TOLERANCE);
});

test("a chroma sample that a shape covers in part moves toward its colour by the share covered (as averaging the RGB block would)", () => {
  const bg: Rgb = [90, 110, 130];
  const color = trackColor(3, 0);
  const c = canvas(8, 8, "bt601", bg);
  // Rows 3..5: chroma row 1 (pixel rows 2, 3) is covered half, row 2 (rows 4, 5) whole; columns 1..6: chroma column 0 half.
  fillRect(c, 1, 3, 6, 3, color);
  const [, ub, vb] = rgbToYuv(bg, "bt601");
  const [, uc, vc] = rgbToYuv(color, "bt601");
  const u = (cx: number, cy: number) => c.data[64 + cy * 4 + cx]!;
  const v = (cx: number, cy: number) => c.data[64 + 16 + cy * 4 + cx]!;
  const near = (got: number, want: number, what: string) => assert.ok(Math.abs(got - want) <= 1, `${what}: ${got}, want ${want.toFixed(1)}`);
  near(u(1, 2), uc, "whole");
  near(v(1, 2), vc, "whole");
  near(u(1, 1), ub + (uc - ub) * 0.5, "half a block");
  near(v(0, 2), vb + (vc - vb) * 0.5, "half a block");
  near(u(0, 1), ub + (uc - ub) * 0.25, "a quarter");
  near(u(1, 0), ub, "untouched");
});

test("the flow image: hsvToRgb of each motion's angle, brightness its length over the longest, to within a level; no motion is black", () => {
  // A 60 x 60 field sampled 1:1: 3,599 motions around the circle at lengths up to 1.2, and one still pixel.
  const s = 60;
  const f = new Float32Array(2 * s * s);
  const want: Rgb[] = [];
  for (let k = 0; k < s * s; k++) {
    const ang = (k * 2 * Math.PI) / (s * s);
    const len = k === 0 ? 0 : k === 1 ? 1.2 : 0.2 + (k % 7) / 7;
    f[k] = len * Math.cos(ang);
    f[s * s + k] = len * Math.sin(ang);
    const b = new Uint8Array(3);
    hsvToRgb(((Math.atan2(f[s * s + k]!, f[k]!) * 180) / Math.PI + 360) % 360, 1, Math.min(1, len / 1.2), b, 0);
    want.push([b[0]!, b[1]!, b[2]!]);
  }
  const rgb = shadedToRgb(flowImage(f, s, s, s));
  let worst = 0;
  for (let k = 0; k < s * s; k++) worst = Math.max(worst, off(at(rgb.data, s, k % s, Math.floor(k / s)), want[k]!));
  assert.ok(worst <= 1, `worst ${worst}`);
  assert.deepEqual(at(rgb.data, s, 0, 0), [0, 0, 0]);
});

test("insets straight to yuv420p (shadedToYuv) are toYuv of their rgb24 form to within a level, odd sizes included", () => {
  const s = 32;
  const map = Float32Array.from({ length: s * s }, (_, i) => Math.sin(i / 37) + (i % s) / s);
  const f = Float32Array.from({ length: 2 * s * s }, (_, i) => Math.cos(i / 11) * (1 + (i % 5)));
  for (const [w, h] of [[24, 14], [25, 13]] as const)
    for (const img of [depthImage(map, s, w, h), flowImage(f, s, w, h)])
      for (const matrix of ["bt601", "bt709", "bt2020"] as const) {
        const direct = shadedToYuv(img, matrix).data;
        const via = toYuv(shadedToRgb(img), matrix).data;
        assert.equal(direct.length, via.length);
        let worst = 0;
        for (let i = 0; i < direct.length; i++) worst = Math.max(worst, Math.abs(direct[i]! - via[i]!));
        // The depth image has no shade: its Y is toYuv's exactly.
        assert.ok(worst <= 1, `${w}x${h} ${matrix}: worst ${worst}`);
        if (!img.shade) assert.deepEqual(direct.subarray(0, w * h), via.subarray(0, w * h));
      }
});

test("insets drawn into reused buffers (the next row, another matrix) equal ones made fresh", () => {
  const s = 32;
  const maps = [0, 1].map((k) => Float32Array.from({ length: s * s }, (_, i) => Math.sin(i / (37 + k * 11)) + (i % s) / s));
  const flows = [0, 1].map((k) => Float32Array.from({ length: 2 * s * s }, (_, i) => Math.cos(i / (11 + k * 5)) * (1 + (i % 5))));
  const [w, h] = [25, 13];
  const depth0 = depthImage(maps[0]!, s, w, h);
  const flow0 = flowImage(flows[0]!, s, w, h);
  const y0 = shadedToYuv(flow0, "bt601");
  const depth1 = depthImage(maps[1]!, s, w, h, depth0, new Float32Array(w * h));
  const flow1 = flowImage(flows[1]!, s, w, h, flow0);
  assert.equal(depth1.index, depth0.index);
  assert.equal(flow1.shade, flow0.shade);
  assert.deepEqual(depth1.index, depthImage(maps[1]!, s, w, h).index);
  assert.deepEqual(flow1.shade, flowImage(flows[1]!, s, w, h).shade);
  const y1 = shadedToYuv(flow1, "bt709", y0);
  assert.equal(y1.data, y0.data);
  assert.equal(y1.matrix, "bt709");
  assert.deepEqual(y1.data, shadedToYuv(flowImage(flows[1]!, s, w, h), "bt709").data);
});

const video = testdata("video", "people_768x432_10fps.mp4");
test("readFrames with pixelFormat yuv420p: ffmpeg's own yuv420p planes, byte for byte; odd sizes have ceil-sized chroma", { skip: skipUnlessTestdata("video", "people_768x432_10fps.mp4") }, async () => {
  const plain = execFileSync("ffmpeg", ["-nostdin", "-loglevel", "error", "-i", video, "-frames:v", "3", "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"], { maxBuffer: 1 << 26 });
  const size = 768 * 432 * 1.5;
  const got: Buffer[] = [];
  for await (const f of readFrames(video, { pixelFormat: "yuv420p" })) {
    assert.equal(f.data.byteLength, size);
    got.push(Buffer.from(f.data));
    if (got.length === 3) break;
  }
  assert.ok(Buffer.concat(got).equals(plain.subarray(0, 3 * size)));
  for await (const f of readFrames(video, { pixelFormat: "yuv420p", width: 101 })) {
    assert.deepEqual([f.width, f.height, f.data.byteLength], [101, 57, 101 * 57 + 2 * 51 * 29]);
    break;
  }
  assert.throws(() => readFrames(video, { pixelFormat: "nv12" as "yuv420p" }), RangeError);
});

test("the video's colour: the matrix from its colour tags (BT.601 when untagged)", { skip: skipUnlessTestdata("video", "people_768x432_10fps.mp4") }, async () => {
  const tmp = tempDir("va-yuv-");
  after(() => tmp.cleanup());
  const hd = join(tmp.dir, "bt709.mp4");
  execFileSync("ffmpeg", ["-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=64x64:rate=5", "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv", hd]);
  assert.deepEqual((await probeVideoColor(hd)).color, { matrix: "bt709", tags: { colorSpace: "bt709", colorPrimaries: "bt709", colorTransfer: "bt709", colorRange: "tv" } });
  assert.deepEqual((await probeVideoColor(video)).color, { matrix: "bt601", tags: { colorSpace: "smpte170m", colorPrimaries: "smpte170m", colorTransfer: "smpte170m", colorRange: "tv" } });
  assert.deepEqual((await probeVideoColor(testdata("video", "sintel_1280x720_23frames.mp4"))).color, { matrix: "bt601", tags: {} });
});
