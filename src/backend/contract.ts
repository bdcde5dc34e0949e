import { VideoAnalysisError } from "../errors.js";
import type { Tensor } from "../tensor.js";
import type { ModelContract, ModelMetadata, TensorSpec } from "./backend.js";

const fmt = (s: TensorSpec | undefined) => (s ? `${s.datatype} [${s.shape.join(",")}]` : "absent");

function shapesAgree(expected: readonly number[], actual: readonly number[]): boolean {
  return expected.length === actual.length && expected.every((d, i) => d === -1 || actual[i] === -1 || d === actual[i]);
}

/**
 * Compares what the caller expects with what the model reports. Throws CONTRACT_MISMATCH naming the
 * model, the tensor, what was expected and what the model has.
 */
export function checkContract(model: string, expected: ModelContract, actual: ModelMetadata): void {
  for (const [kind, want, have] of [
    ["input", expected.inputs, actual.inputs],
    ["output", expected.outputs, actual.outputs],
  ] as const) {
    for (const w of want) {
      const h = have.find((t) => t.name === w.name);
      if (!h || h.datatype !== w.datatype || !shapesAgree(w.shape, h.shape)) {
        const names = have.map((t) => t.name).join(", ");
        throw new VideoAnalysisError(
          "CONTRACT_MISMATCH",
          `${kind} ${w.name}: expected ${fmt(w)}, model has ${fmt(h)}${h ? "" : ` (its ${kind}s: ${names || "none"})`}; ` +
            `point the profile at a model exported with this contract, or at the matching branch`,
          { model, details: { tensor: w.name, expected: fmt(w), actual: fmt(h) } },
        );
      }
    }
  }
}

/** Checks tensors about to be sent against the contract's inputs, before anything leaves the process. */
export function checkInputs(model: string, contract: ModelContract, inputs: readonly Tensor[]): void {
  for (const spec of contract.inputs) {
    const t = inputs.find((x) => x.name === spec.name);
    if (!t) throw new VideoAnalysisError("INVALID_ARGUMENT", `input ${spec.name} (${fmt(spec)}) was not given`, { model });
    if (t.datatype !== spec.datatype || !shapesAgree(spec.shape, t.shape)) {
      throw new VideoAnalysisError("INVALID_ARGUMENT", `input ${spec.name}: expected ${fmt(spec)}, got ${fmt(t)}`, { model });
    }
  }
}

/**
 * Remembers which (model, contract) pairs have passed their check, so the metadata round trip happens once
 * per model, contract and backend. Concurrent first calls share one check.
 */
export class ContractCache {
  private readonly checked = new Map<string, Promise<void>>();

  ensure(model: string, version: string | undefined, contract: ModelContract, fetch: () => Promise<ModelMetadata>): Promise<void> {
    // Keyed by the contract too: a caller expecting something else of the same model is checked again.
    const key = `${model}\u0000${version ?? ""}\u0000${JSON.stringify(contract)}`;
    let p = this.checked.get(key);
    if (!p) {
      p = fetch().then((md) => checkContract(model, contract, md));
      // A failed check is not cached: the model may be fixed and reloaded.
      p.catch(() => this.checked.delete(key));
      this.checked.set(key, p);
    }
    return p;
  }

  /** Forgets every check, so each model is checked again (after a server restart). */
  clear(): void {
    this.checked.clear();
  }
}
