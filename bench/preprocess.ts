// Preprocess benchmark: ms per 1080p frame to fit CLIP's 224 input three ways: openai/CLIP's bicubic
// (preprocess/bicubic.ts, Pillow's arithmetic; its SIMD kernels and its JavaScript passes), the SDK's bilinear centre crop (SIMD kernel), and
// sharp's (libvips) cubic resize + centre extract. Run: npm run build && node dist/bench/preprocess.js [rounds]
import sharp from "sharp";
import { centerCropBicubic } from "../src/preprocess/pil-resize.js";
import { centerCropTo } from "../src/pipeline/frame.js";

const W = 1920;
const H = 1080;
const S = 224;
const rounds = Number(process.argv[2] ?? 30);
// A busy picture (content does not change the work of these kernels).
const data = new Uint8Array(W * H * 3).map((_, i) => (Math.imul(i, 2654435761) >>> 24) ^ ((i / 3) % W));
const img = { width: W, height: H, channels: 3, data };
const out = new Uint8Array(S * S * 3);

async function time(name: string, f: () => unknown): Promise<number> {
  for (let i = 0; i < 3; i++) await f();
  const ms: number[] = [];
  for (let i = 0; i < rounds; i++) {
    const t = performance.now();
    await f();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const median = ms[Math.floor(ms.length / 2)]!;
  console.log(`${name.padEnd(34)} median ${median.toFixed(2)} ms  (min ${ms[0]!.toFixed(2)})`);
  return median;
}

const bicubic = await time("bicubic (Pillow-exact, SIMD)", () => centerCropBicubic(img, S, out));
const bicubicJs = await time("bicubic (Pillow-exact, JavaScript)", () => centerCropBicubic(img, S, out, false));
const bilinear = await time("bilinear centre crop (SIMD)", () => centerCropTo(img, S, out));
const w = Math.trunc((S * W) / H);
const cubic = await time("sharp cubic resize + extract", () =>
  sharp(Buffer.from(data.buffer), { raw: { width: W, height: H, channels: 3 } })
    .resize(w, S, { kernel: "cubic" })
    .extract({ left: Math.round((w - S) / 2), top: 0, width: S, height: S })
    .raw()
    .toBuffer(),
);
console.log(
  `ratios: bicubic SIMD / bilinear ${(bicubic / bilinear).toFixed(2)}, bicubic SIMD / sharp cubic ${(bicubic / cubic).toFixed(2)}, bicubic JavaScript / SIMD ${(bicubicJs / bicubic).toFixed(2)}`,
);
