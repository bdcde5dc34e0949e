import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository root (tests run from dist/test/..., sources sit at the root). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");

/** The shared real test data: $VIDEO_SDK_TESTDATA, else ../shared/testdata beside the repository. */
export const testdataDir = process.env.VIDEO_SDK_TESTDATA ?? resolve(repoRoot, "../shared/testdata");

/** Path of a test data file. */
export function testdata(...parts: string[]): string {
  return join(testdataDir, ...parts);
}

/**
 * For node:test's `skip` option: false when the file is there, else the reason, so a run without the
 * shared data says why these tests did not run.
 */
export function skipUnlessTestdata(...parts: string[]): false | string {
  const p = testdata(...parts);
  return existsSync(p) ? false : `test data ${p} is absent (set VIDEO_SDK_TESTDATA to the shared testdata folder)`;
}
