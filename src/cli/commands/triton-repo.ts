import { diffRepository, generateRepository, writeRepository } from "../../triton-repo/index.js";
import { DETECTIONS } from "../../catalog/settings.js";
import { parseCommandArgs, required, usageError, type Command } from "../command.js";
import { loadProfile } from "../../profiles/index.js";

export const tritonRepoCommand: Command = {
  name: "triton-repo",
  summary: "generate the Triton model repository (ensembles, python preprocess, onnx configs) from the catalog",
  usage: "video-analysis triton-repo --out DIR [--architecture yolo11n ...] [--tracks] [--profile FILE] [--check]",
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, {
      out: { type: "string", value: "DIR", description: "the model repository folder to write (or to check)" },
      architecture: { type: "string", multiple: true, value: "NAME", description: "a catalog architecture to include, e.g. yolo11n (default: the catalog's defaults)" },
      check: { type: "boolean", description: "write nothing: compare DIR with the catalog's repository, exit 1 when it differs" },
      tracks: { type: "boolean", description: "also write tracks C and D: the End2End engines, the DALI letterbox step and the three batching tiers' ensembles" },
      profile: { type: "string", value: "FILE", description: "write what this profile routes to (tracks C/D when it asks for end2end output or jpeg input)" },
    });
    // A profile asking for End2End answers or JPEG input (tracks C/D) gets their models, for its architecture.
    const architectures = [...(values.architecture ?? [])];
    let tracks = values.tracks ?? false;
    if (values.profile) {
      const det = (await loadProfile(values.profile)).components[DETECTIONS];
      if (det?.enabled && (det.output_format === "end2end" || det.input === "jpeg")) {
        tracks = true;
        if (det.architecture && !architectures.includes(det.architecture)) architectures.push(det.architecture);
      }
    }
    const out = required(this, "out", values.out);
    let files;
    try {
      files = generateRepository({ architectures, tracks });
    } catch (e) {
      throw usageError(this, (e as Error).message);
    }
    const models = new Set([...files.keys()].map((p) => p.split("/")[0]));
    if (values.check) {
      const d = await diffRepository(out, files);
      const problems = [
        ...d.missing.map((p) => `missing  ${p}`),
        ...d.changed.map((p) => `changed  ${p}`),
        ...d.extra.map((p) => `extra    ${p}`),
      ];
      if (problems.length === 0) {
        console.log(`${out}: up to date (${models.size} models, ${files.size} files)`);
        return 0;
      }
      console.log(`${out} differs from the catalog's repository; regenerate it with: video-analysis triton-repo --out ${out}`);
      for (const p of problems) console.log(`  ${p}`);
      return 1;
    }
    await writeRepository(out, files);
    console.log(`wrote ${files.size} files of ${models.size} models to ${out}`);
    console.log("each <model>_onnx/1/ still needs your export as model.onnx (see its config.pbtxt)");
    return 0;
  },
};
