// Puts the run-time data the package ships, but the repository does not track (it is over 1 MiB), into
// assets/: CLIP's BPE vocabulary (openai/CLIP, MIT; NOTICE), read from the test data beside the checkout.
// Run by `npm run build`, so `npm pack` ships it. Never fails the build: without ../shared the SDK still
// builds, and CLIP's tokenizer says where it looked ($CLIP_BPE_PATH or the profile's bpe_path then serve).
import { copyFileSync, existsSync, mkdirSync, renameSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const name = "bpe_simple_vocab_16e6.txt.gz";
const dest = join(root, "assets", "clip", name);
const source = join(root, "..", "shared", "testdata", "clip", name);

if (!existsSync(dest)) {
  if (existsSync(source)) {
    mkdirSync(dirname(dest), { recursive: true });
    const tmp = `${dest}.${process.pid}.tmp`;
    copyFileSync(source, tmp);
    renameSync(tmp, dest);
    console.log(`vendor-assets: ${dest} from ${source}`);
  } else {
    console.warn(`vendor-assets: ${source} not found; ${dest} is not there, so CLIP needs $CLIP_BPE_PATH or bpe_path`);
  }
}
