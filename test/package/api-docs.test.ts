/**
 * The API reference builds from the doc comments (`npm run docs`: TypeDoc on src/index.ts, typedoc.json),
 * with every warning an error: a type the public API names but does not export, or a broken {@link},
 * fails here.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { repoRoot } from "../support/testdata.js";

test("npm run docs: the TypeDoc reference builds with warnings as errors", { timeout: 300_000 }, () => {
  const config = JSON.parse(readFileSync(join(repoRoot, "typedoc.json"), "utf8")) as { treatWarningsAsErrors?: boolean; entryPoints?: string[] };
  assert.equal(config.treatWarningsAsErrors, true);
  assert.deepEqual(config.entryPoints, ["src/index.ts"]);
  const out = mkdtempSync(join(tmpdir(), "vasdk-api-docs-"));
  try {
    const r = spawnSync(process.execPath, [join(repoRoot, "node_modules/typedoc/bin/typedoc"), "--out", out], { cwd: repoRoot, encoding: "utf8" });
    assert.equal(r.status, 0, `${r.stdout}\n${r.stderr}`);
    assert.doesNotMatch(r.stdout + r.stderr, /\[warning\]|\[error\]/);
    for (const page of ["index.html", "classes/ModelManager.html", "classes/TritonClient.html", "functions/letterbox.html", "classes/NpzWriter.html"]) {
      assert.ok(existsSync(join(out, page)), `${page} in the reference`);
    }
    // The doc comments are in it, examples included.
    const page = readFileSync(join(out, "classes/ModelManager.html"), "utf8");
    assert.match(page, /Analyses frames that come from elsewhere/);
    assert.match(page, /<h4 class="tsd-anchor-link"[^>]*>Example/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
