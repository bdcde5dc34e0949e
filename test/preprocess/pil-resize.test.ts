// openai/CLIP's preprocessing: Pillow's antialiased bicubic resize of the shorter side + centre crop.
// Checked against the reference vector made by openai/CLIP itself, and byte for byte against Pillow on
// real images at many sizes (shrinking and enlarging, odd crops).
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { test } from "node:test";
import { NORMALIZATIONS } from "../../src/catalog/normalization.js";
import { fitImage } from "../../src/pipeline/frame.js";
import { centerCropBicubic, PIL_BICUBIC, PIL_BILINEAR, resizeThenCenterCrop, stretchCropBilinear } from "../../src/preprocess/pil-resize.js";
import { readImageRgb } from "../../src/preprocess/decode-image.js";
import { normalizeNhwcToNchw } from "../../src/preprocess/normalize.js";
import { resizeBilinear } from "../../src/preprocess/resize.js";
import { skipUnlessTestdata, testdata } from "../support/testdata.js";

const skip = skipUnlessTestdata("clip", "franz_kafka_preprocessed_224.npy");

function readNpyFloat32(path: string): { shape: number[]; data: Float32Array } {
  const b = readFileSync(path);
  const headerLen = b.readUInt16LE(8);
  const header = b.subarray(10, 10 + headerLen).toString("latin1");
  assert.match(header, /'descr': '<f4'/);
  const shape = /'shape': \(([^)]*)\)/.exec(header)![1]!.split(",").filter((s) => s.trim()).map(Number);
  const body = b.subarray(10 + headerLen);
  return { shape, data: new Float32Array(body.buffer.slice(body.byteOffset, body.byteOffset + body.byteLength)) };
}

const pillow = (() => {
  try {
    execFileSync("python3", ["-c", "import PIL, numpy"], { stdio: "ignore" });
    return true;
  } catch {
    return false;
  }
})();

test("CLIP: the SDK's preprocessing of franz-kafka.jpg is openai/CLIP's to 1e-6", { skip }, async () => {
  const ref = readNpyFloat32(testdata("clip", "franz_kafka_preprocessed_224.npy"));
  assert.deepEqual(ref.shape, [1, 3, 224, 224]);
  const img = await readImageRgb(testdata("images", "franz-kafka.jpg"));
  // The pipeline's own fitting (embedded and Triton clients send these pixels) and normalisation.
  const fitted = fitImage(img, "center_crop_bicubic", 224).image;
  const x = normalizeNhwcToNchw(fitted.data, [1, 224, 224, 3], NORMALIZATIONS.clip);
  let max = 0;
  for (let i = 0; i < x.length; i++) max = Math.max(max, Math.abs(x[i]! - ref.data[i]!));
  assert.ok(max <= 1e-6, `max |difference| ${max}`);
  // The old bilinear centre crop is far from it: the test can tell.
  const bilinear = normalizeNhwcToNchw(fitImage(img, "center_crop", 224).image.data, [1, 224, 224, 3], NORMALIZATIONS.clip);
  let far = 0;
  for (let i = 0; i < x.length; i++) far = Math.max(far, Math.abs(bilinear[i]! - ref.data[i]!));
  assert.ok(far > 0.1, `bilinear differs by ${far}`);
});

test("CLIP: the image reader's pixels are Pillow's for franz-kafka.jpg (decoding matters too)", { skip: skip || (!pillow && "Pillow not installed") }, async () => {
  const path = testdata("images", "franz-kafka.jpg");
  const img = await readImageRgb(path);
  const out = execFileSync("python3", ["-c", "import sys,numpy as np;from PIL import Image;sys.stdout.buffer.write(np.asarray(Image.open(sys.argv[1]).convert('RGB')).tobytes())", path], { maxBuffer: 1 << 26 });
  assert.equal(out.length, img.data.length);
  assert.ok(Buffer.from(img.data.buffer, img.data.byteOffset, img.data.byteLength).equals(out), "decoded pixels differ from Pillow's");
});

test("bicubic: byte for byte Pillow's resize + torchvision's centre crop on real images, shrinking and enlarging", { skip: skip || (!pillow && "Pillow not installed") }, async () => {
  const cases: Array<[string, number]> = [["franz-kafka.jpg", 224], ["bus.jpg", 336], ["zidane.jpg", 448], ["dog.jpg", 97], ["places_cam_example.jpg", 224], ["clip_diagram.png", 641]];
  const script = [
    "import sys,numpy as np",
    "from PIL import Image",
    "im=Image.open(sys.argv[1]).convert('RGB'); s=int(sys.argv[2]); w,h=im.size",
    "W,H=(s,int(s*h/w)) if w<=h else (int(s*w/h),s)",
    "r=im.resize((W,H),Image.BICUBIC); t=int(round((H-s)/2.0)); l=int(round((W-s)/2.0))",
    "sys.stdout.buffer.write(np.asarray(r)[t:t+s,l:l+s].tobytes())",
  ].join("\n");
  for (const [name, size] of cases) {
    const path = testdata("images", name);
    const img = await readImageRgb(path);
    const ours = centerCropBicubic(img, size).data;
    const theirs = execFileSync("python3", ["-c", script, path, String(size)], { maxBuffer: 1 << 26 });
    let diff = 0;
    for (let i = 0; i < ours.length; i++) if (ours[i] !== theirs[i]) diff++;
    assert.equal(theirs.length, ours.length, name);
    assert.equal(diff, 0, `${name} at ${size}: ${diff} bytes differ`);
  }
});

test("bicubic: a frame already S x S is returned as is; `out` is written", () => {
  const data = new Uint8Array(8 * 8 * 3).map((_, i) => (i * 37) & 255);
  const same = centerCropBicubic({ width: 8, height: 8, channels: 3, data }, 8);
  assert.deepEqual([...same.data], [...data]);
  const out = new Uint8Array(4 * 4 * 3);
  const r = centerCropBicubic({ width: 8, height: 16, channels: 3, data: new Uint8Array(8 * 16 * 3).fill(200) }, 4, out);
  assert.equal(r.data, out);
  assert.ok(out.every((v) => v === 200));
  // Not a bilinear resize in disguise.
  const grad = new Uint8Array(64 * 64 * 3).map((_, i) => (Math.imul(i, 2654435761) >>> 24) & 255);
  const b = centerCropBicubic({ width: 64, height: 64, channels: 3, data: grad }, 16).data;
  const l = resizeBilinear({ width: 64, height: 64, channels: 3, data: grad }, 16, 16).data;
  assert.notDeepEqual([...b], [...l]);
});

test("bicubic: the SIMD kernels equal the JavaScript passes byte for byte (odd sizes, shrinking and enlarging)", () => {
  let seed = 7;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24);
  for (const [w, h, s] of [[1920, 1080, 224], [450, 655, 224], [37, 91, 29], [101, 53, 150], [640, 360, 448], [5, 9, 3]] as const) {
    const data = new Uint8Array(w * h * 3).map(rnd);
    const img = { width: w, height: h, channels: 3, data };
    const a = centerCropBicubic(img, s).data;
    const b = centerCropBicubic(img, s, undefined, false).data;
    assert.ok(Buffer.from(a).equals(Buffer.from(b)), `${w}x${h} -> ${s}`);
    const c = stretchCropBilinear(img, s).data;
    const d = stretchCropBilinear(img, s, undefined, false).data;
    assert.ok(Buffer.from(c).equals(Buffer.from(d)), `stretch ${w}x${h} -> ${s}`);
  }
});

test("Places365: CSAIL's Resize((256, 256)) + CenterCrop(224) byte for byte (and its 8/7 margin at 336, 448)", { skip: skip || (!pillow && "Pillow not installed") }, async () => {
  const script = [
    "import sys,numpy as np",
    "from PIL import Image",
    "im=Image.open(sys.argv[1]).convert('RGB'); s=int(sys.argv[2]); r=round(s*256/224)",
    "a=np.asarray(im.resize((r,r),Image.BILINEAR)); o=int(round((r-s)/2.0))",
    "sys.stdout.buffer.write(a[o:o+s,o:o+s].tobytes())",
  ].join("\n");
  for (const [name, size] of [["places_cam_example.jpg", 224], ["mountains.jpg", 224], ["bus.jpg", 336], ["franz-kafka.jpg", 448]] as const) {
    const path = testdata("images", name);
    const img = await readImageRgb(path);
    const ours = fitImage(img, "stretch_crop_bilinear", size).image.data;
    const theirs = execFileSync("python3", ["-c", script, path, String(size)], { maxBuffer: 1 << 26 });
    assert.equal(theirs.length, ours.length, name);
    let diff = 0;
    for (let i = 0; i < ours.length; i++) if (ours[i] !== theirs[i]) diff++;
    assert.equal(diff, 0, `${name} at ${size}: ${diff} bytes differ`);
    if (size === 224) {
      // What the former fit (centre square, bilinear without antialiasing) was off by: reported, and large.
      const old = fitImage(img, "center_crop", size).image.data;
      let sum = 0;
      for (let i = 0; i < ours.length; i++) sum += Math.abs(ours[i]! - old[i]!);
      const mean = sum / ours.length;
      console.log(`# ${name}: the former Places365 fit differs from CSAIL's by ${mean.toFixed(1)} per pixel value on average`);
      assert.ok(mean > 5, `${name}: ${mean}`);
    }
  }
});

test("Pillow's pass order: vertical first when the width grows and the height shrinks (random pictures, both filters)", { skip: !pillow && "Pillow not installed" }, () => {
  const script = [
    "import sys,numpy as np",
    "from PIL import Image",
    "W,H,w,h,f=map(int,sys.argv[1:6]); a=np.frombuffer(sys.stdin.buffer.read(),np.uint8).reshape(H,W,3)",
    "sys.stdout.buffer.write(np.asarray(Image.fromarray(a).resize((w,h),f)).tobytes())",
  ].join("\n");
  let seed = 11;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) >>> 24);
  // (source, resized): width up + height down, the reverse, both up, both down, nearly square.
  for (const [W, H, w, h] of [[100, 100, 150, 50], [100, 100, 50, 150], [100, 100, 150, 160], [100, 100, 60, 50], [100, 100, 101, 99], [450, 655, 512, 512]] as const) {
    const data = new Uint8Array(W * H * 3).map(rnd);
    for (const [filter, code] of [[PIL_BICUBIC, 3], [PIL_BILINEAR, 2]] as const) {
      const theirs = execFileSync("python3", ["-c", script, String(W), String(H), String(w), String(h), String(code)], { input: data, maxBuffer: 1 << 26 });
      // The whole resized picture: a "crop" of its own size (square outputs only, so crop the shorter side).
      const s = Math.min(w, h);
      const ours = resizeThenCenterCrop({ width: W, height: H, channels: 3, data }, w, h, s, filter).data;
      const l = Math.round((w - s) / 2 - 1e-9);
      const t = Math.round((h - s) / 2 - 1e-9);
      let diff = 0;
      for (let y = 0; y < s; y++) for (let i = 0; i < s * 3; i++) if (ours[y * s * 3 + i] !== theirs[((t + y) * w + l) * 3 + i]) diff++;
      assert.equal(diff, 0, `${W}x${H} -> ${w}x${h} (filter ${code}): ${diff} bytes differ`);
    }
  }
});
