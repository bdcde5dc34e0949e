import { join } from "node:path";
import { repositoryModels } from "../../src/catalog/index.js";
import { EmbeddedEnsembles } from "../../src/embedded/embedded-ensembles.js";
import type { CatalogModel } from "../../src/catalog/types.js";
import { EmbeddedBackend } from "../../src/embedded/embedded-backend.js";
import { preprocessInputs } from "../../src/preprocess/normalize.js";
import type { TestModel } from "../support/test-server.js";
import { repoRoot } from "../support/testdata.js";

/**
 * The catalog's Triton repository as test-server models, computed by the committed contract models:
 * for each model its ensemble (platform "ensemble"), its python preprocess (the SDK's normalisation)
 * and its `_onnx` model (onnxruntime on models/contract/<model>.onnx). Names and contracts are exactly
 * those of triton/models, so `smoke` sees what it would see on a real server with that repository.
 */
export async function catalogRepository(options: { architectures?: string[]; without?: string[] } = {}): Promise<{ models: TestModel[]; close: () => Promise<void> }> {
  const catalog = repositoryModels(options.architectures ?? []);
  const emb = await EmbeddedBackend.create({
    models: Object.fromEntries(catalog.map((m) => [m.name, join(repoRoot, "models", "contract", `${m.name}.onnx`)])),
    intraOpNumThreads: 1,
  });
  const ensembles = new EmbeddedEnsembles(emb);
  const models: TestModel[] = [];
  const add = (t: TestModel) => {
    if (!options.without?.includes(t.name)) models.push(t);
  };
  for (const m of catalog) {
    add({
      name: m.name,
      platform: "ensemble",
      inputs: m.ensemble.inputs,
      outputs: m.ensemble.outputs,
      compute: async (inputs, ctx) => (await ensembles.infer(m.name, Object.values(inputs), { outputs: ctx.requestedOutputs })).outputs,
    });
    if (m.preprocessName) {
      add({
        name: m.preprocessName,
        inputs: m.ensemble.inputs,
        outputs: m.onnx.inputs,
        compute: (inputs) => Object.fromEntries(preprocessInputs(m as CatalogModel, Object.values(inputs)).map((t) => [t.name, t])),
      });
    }
    add({
      name: m.onnxName,
      platform: "onnxruntime_onnx",
      inputs: m.onnx.inputs,
      outputs: m.onnx.outputs,
      compute: async (inputs, ctx) => (await emb.infer(m.name, Object.values(inputs), { outputs: ctx.requestedOutputs })).outputs,
    });
  }
  return { models, close: () => emb.close() };
}
