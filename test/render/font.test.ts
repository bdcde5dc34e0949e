// The glyph cache: a second process with the same font size and characters reads the atlas instead of
// loading sharp and rendering it again, and draws the same pixels.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, test } from "node:test";
import { GlyphFont, glyphCacheDir } from "../../src/render/font.js";
import { tempDir } from "../video/fixtures.js";
import { repoRoot } from "../support/testdata.js";

const tmp = tempDir("va-glyphs-");
after(() => tmp.cleanup());

const FONT = pathToFileURL(join(repoRoot, "dist", "src", "render", "font.js")).href;

/** Draws `text` with a fresh GlyphFont in a new node process (cache dir `cache`); its pixels, and whether libvips was loaded. */
function drawInChild(cache: string, text: string): { pixels: string; vips: boolean } {
  const script = `
    const { GlyphFont } = await import(${JSON.stringify(FONT)});
    const { readFileSync } = await import("node:fs");
    const font = await GlyphFont.create(20, ${JSON.stringify(text)});
    const c = { width: 200, height: 30, data: new Uint8Array(200 * 30 * 3) };
    font.draw(c, ${JSON.stringify(text)}, 2, 2, [255, 255, 255]);
    const vips = readFileSync("/proc/self/maps", "utf8").includes("libvips");
    console.log(JSON.stringify({ pixels: Buffer.from(c.data).toString("base64"), vips }));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, VIDEO_SDK_CACHE_DIR: cache }, encoding: "utf8" });
  return JSON.parse(out) as { pixels: string; vips: boolean };
}

test("glyph cache: the second process reads the atlas (sharp not loaded) and draws the same pixels; a damaged file is rendered again", { skip: process.platform !== "linux" && "reads /proc/self/maps" }, () => {
  const cache = join(tmp.dir, "cache");
  const text = "person #3 0.87 é";
  const first = drawInChild(cache, text);
  assert.equal(first.vips, true, "the first process renders with sharp");
  const files = readdirSync(join(cache, "glyphs"));
  assert.equal(files.length, 1);
  const second = drawInChild(cache, text);
  assert.equal(second.vips, false, "a cached atlas needs no sharp");
  assert.equal(second.pixels, first.pixels);
  assert.ok(Buffer.from(first.pixels, "base64").some((v) => v > 0), "the text was drawn");
  // A file cut short is not taken for an atlas: rendered again, and rewritten whole.
  writeFileSync(join(cache, "glyphs", files[0]!), Buffer.alloc(12));
  const third = drawInChild(cache, text);
  assert.equal(third.vips, true);
  assert.equal(third.pixels, first.pixels);
  assert.equal(drawInChild(cache, text).vips, false);
});

test("glyph cache: off turns it off; XDG_CACHE_HOME is the default's base", async () => {
  const saved = { ...process.env };
  try {
    process.env.VIDEO_SDK_CACHE_DIR = "off";
    assert.equal(glyphCacheDir(), undefined);
    const font = await GlyphFont.create(13);
    assert.ok(font.width("ab") > 0);
    delete process.env.VIDEO_SDK_CACHE_DIR;
    process.env.XDG_CACHE_HOME = join(tmp.dir, "xdg");
    assert.equal(glyphCacheDir(), join(tmp.dir, "xdg", "video-analysis-sdk", "glyphs"));
  } finally {
    process.env = saved;
  }
});
