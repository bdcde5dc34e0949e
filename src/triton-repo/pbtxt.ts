import type { TensorSpec } from "../backend/backend.js";

/**
 * A tiny writer of Triton's model configuration (protobuf text format), only what the generator needs.
 * Output is deterministic: the committed repository is compared byte for byte with it.
 */
export type PbValue = string | number | boolean | PbEnum | PbMessage | PbValue[];
export interface PbMessage {
  [field: string]: PbValue | undefined;
}
/** An enum value, written bare (TYPE_FP32, KIND_CPU). */
export class PbEnum {
  constructor(readonly value: string) {}
}
export const pbEnum = (v: string) => new PbEnum(v);

function scalar(v: string | number | boolean | PbEnum): string {
  if (v instanceof PbEnum) return v.value;
  if (typeof v === "string") return JSON.stringify(v);
  return String(v);
}

function isScalar(v: PbValue): v is string | number | boolean | PbEnum {
  return typeof v !== "object" || v instanceof PbEnum;
}

function write(msg: PbMessage, indent: string, out: string[]): void {
  for (const [field, v] of Object.entries(msg)) {
    if (v === undefined) continue;
    if (Array.isArray(v)) {
      if (v.every(isScalar)) {
        out.push(`${indent}${field}: [ ${v.map((x) => scalar(x as string)).join(", ")} ]`);
      } else {
        out.push(`${indent}${field} [`);
        v.forEach((item, i) => {
          out.push(`${indent}  {`);
          write(item as PbMessage, `${indent}    `, out);
          out.push(`${indent}  }${i < v.length - 1 ? "," : ""}`);
        });
        out.push(`${indent}]`);
      }
    } else if (isScalar(v)) {
      out.push(`${indent}${field}: ${scalar(v)}`);
    } else {
      out.push(`${indent}${field} {`);
      write(v, `${indent}  `, out);
      out.push(`${indent}}`);
    }
  }
}

/** The message as protobuf text, after `# ` comment lines. */
export function toPbtxt(msg: PbMessage, comments: readonly string[] = []): string {
  const out = comments.map((c) => (c ? `# ${c}` : "#"));
  write(msg, "", out);
  return `${out.join("\n")}\n`;
}

/** A tensor's entry of `input [...]` / `output [...]`. */
export function tensorEntry(t: TensorSpec): PbMessage {
  return { name: t.name, data_type: pbEnum(`TYPE_${t.datatype === "BYTES" ? "STRING" : t.datatype}`), dims: t.shape };
}

/** A map field (input_map/output_map): protobuf text writes one `key`/`value` block per entry. */
export function mapEntries(pairs: ReadonlyArray<readonly [string, string]>): PbMessage[] {
  return pairs.map(([key, value]) => ({ key, value }));
}
