import { allModels, familiesOf, findModel } from "../catalog/index.js";
import { COMPONENTS } from "../catalog/types.js";
import type { Profile } from "./schema.js";

/** A problem found in a profile: where (key path) and what was expected. */
export interface ProfileIssue {
  path: (string | number)[];
  message: string;
}

function closest(name: string, options: readonly string[]): string | undefined {
  // The option sharing the longest prefix, when it shares a useful one: enough for "did you mean".
  let best: string | undefined;
  let bestLen = 2;
  for (const o of options) {
    let i = 0;
    while (i < o.length && i < name.length && o[i] === name[i]) i++;
    if (i > bestLen) {
      best = o;
      bestLen = i;
    }
  }
  return best;
}

function unknownModel(name: string, what: string): string {
  const names = allModels().map((m) => m.name);
  const guess = closest(name, names);
  return `expected a catalog model name, got "${name}"${guess ? ` (did you mean "${guess}"?)` : ""}; ${what}`;
}

/**
 * Checks that need more than the schema: one backend, one of url/urls, and every name and size
 * the profile uses existing in the catalog.
 */
export function semanticIssues(p: Profile, given: readonly string[] = []): ProfileIssue[] {
  const issues: ProfileIssue[] = [];
  let enabled = 0;
  // Any other key under components is a component of the user's own: it says where its code is, or it
  // was given in code; a misspelt built-in name is caught here.
  for (const [name, c] of Object.entries(p.components)) {
    if ((COMPONENTS as readonly string[]).includes(name) || !c) continue;
    const own = c as { module?: string; family?: string; enabled: boolean };
    if (own.enabled) enabled++;
    if (given.includes(name)) continue;
    if (own.module === undefined && own.family === undefined) {
      const guess = closest(name, COMPONENTS);
      issues.push({
        path: ["components", name],
        message:
          `unknown component "${name}"${guess ? ` (did you mean "${guess}"?)` : ""}; the built-in ones are ${COMPONENTS.join(", ")}; ` +
          `a component of your own names its module (module: ./mine.js) or a generic family (family: image_classifier)`,
      });
    } else if (own.module !== undefined && own.family !== undefined) {
      issues.push({ path: ["components", name, "family"], message: "expected either module or family, not both" });
    }
  }
  const b = p.backend;
  if (!!b.triton === !!b.embedded) {
    issues.push({ path: ["backend"], message: `expected exactly one of "triton" or "embedded", got ${b.triton ? "both" : "neither"}` });
  }
  if (b.triton) {
    if (!!b.triton.url === !!b.triton.urls) {
      issues.push({ path: ["backend", "triton"], message: `expected exactly one of "url" or "urls", got ${b.triton.url ? "both" : "neither"}` });
    }
    const tls = b.triton.tls;
    if (tls && !!tls.cert !== !!tls.key) {
      issues.push({ path: ["backend", "triton", "tls", tls.cert ? "cert" : "key"], message: `expected "cert" and "key" together (mutual TLS), got only "${tls.cert ? "cert" : "key"}"` });
    }
  }
  if (b.embedded) {
    for (const name of Object.keys(b.embedded.models)) {
      if (!findModel(name)) issues.push({ path: ["backend", "embedded", "models", name], message: unknownModel(name, "embedded models are named by catalog model") });
    }
  }

  for (const component of COMPONENTS) {
    const c = p.components[component];
    if (!c) continue;
    if (c.enabled) enabled++;
    if ("model" in c && c.model !== undefined) {
      // A model of the user's own is called as named: the catalog's axes and track D do not apply to it.
      for (const key of ["architecture", "branches", "thresholds"] as const) {
        if (c[key] !== undefined) issues.push({ path: ["components", component, key], message: `expected no ${key} beside model: a model of your own is not routed; remove ${key}, or remove model to use the catalog's` });
      }
      if ("input" in c && c.input === "jpeg") issues.push({ path: ["components", component, "input"], message: "expected input pixels beside model: jpeg goes to the catalog's track D ensembles; remove model, or input" });
      continue;
    }
    const families = familiesOf(component);
    if (c.architecture !== undefined) {
      for (const f of families) {
        if (!f.architectures.some((a) => a.id === c.architecture)) {
          issues.push({
            path: ["components", component, "architecture"],
            message: `expected one of ${f.architectures.map((a) => a.id).join(", ")} (the ${f.title} architectures), got "${c.architecture}"`,
          });
        }
      }
    }
    const branched = families.filter((f) => f.branches.length > 0);
    c.branches?.forEach((size, i) => {
      for (const f of branched) {
        if (!f.branches.some((x) => x.input === size)) {
          issues.push({
            path: ["components", component, "branches", i],
            message: `expected a branch size of ${f.title}: one of ${f.branches.map((x) => x.input).join(", ")}, got ${size}`,
          });
        }
      }
    });
    if (c.thresholds && branched.some((f) => f.routing !== "thresholds")) {
      issues.push({
        path: ["components", component, "thresholds"],
        message: "expected no thresholds here: this family takes the largest enabled branch that does not upscale the frame; choose branches instead",
      });
    }
  }
  enabled += given.filter((n) => !(n in p.components)).length;
  if (enabled === 0) issues.push({ path: ["components"], message: `expected at least one enabled component (${COMPONENTS.join(", ")})` });

  p.routing.fallbacks.forEach((rule, i) => {
    const from = findModel(rule.from);
    const to = findModel(rule.to);
    if (!from) issues.push({ path: ["routing", "fallbacks", i, "from"], message: unknownModel(rule.from, "fallback rules name catalog models") });
    if (!to) issues.push({ path: ["routing", "fallbacks", i, "to"], message: unknownModel(rule.to, "fallback rules name catalog models") });
    if (from && to && from.family !== to.family) {
      issues.push({ path: ["routing", "fallbacks", i, "to"], message: `expected a model of the same family as "${rule.from}" (${from.family.title}), got "${rule.to}" (${to.family.title})` });
    }
    if (rule.from === rule.to) issues.push({ path: ["routing", "fallbacks", i, "to"], message: `expected a different model than "from", got "${rule.to}" for both` });
  });
  for (const name of Object.keys(p.model_names)) {
    if (!findModel(name)) issues.push({ path: ["model_names", name], message: unknownModel(name, "model_names maps catalog names to the server's names") });
  }
  for (const name of Object.keys(p.concurrency.per_model)) {
    if (!findModel(name)) issues.push({ path: ["concurrency", "per_model", name], message: unknownModel(name, "per_model is keyed by catalog model name") });
  }
  return issues;
}
