import { fileURLToPath } from "node:url";
import * as protoLoader from "@grpc/proto-loader";

/** proto/ at the package root: Triton's protocol files, loaded at run time so they stay the one source. */
export const PROTO_DIR = fileURLToPath(new URL("../../../proto/", import.meta.url));

/**
 * How messages look in JavaScript: field names as in the .proto (snake_case), int64 as decimal strings
 * (shapes and counters can exceed 2^53 on the wire; the client converts where it knows they are small),
 * enums as names, bytes as Buffers that view the received message (no copy).
 */
export const LOADER_OPTIONS: protoLoader.Options = {
  keepCase: true,
  longs: String,
  enums: String,
  defaults: false,
  oneofs: true,
  includeDirs: [PROTO_DIR],
};

export const SERVICE = "inference.GRPCInferenceService";

let cached: protoLoader.ServiceDefinition | undefined;

/**
 * inference.GRPCInferenceService's methods with their serializers. The calls other than inference
 * (health, metadata, repository, shared memory) are small and use these; ModelInfer and ModelStreamInfer
 * have a codec of their own (grpc/codec.ts).
 */
export function inferenceService(): protoLoader.ServiceDefinition {
  if (!cached) {
    const def = protoLoader.loadSync(["grpc_service.proto"], LOADER_OPTIONS);
    cached = def[SERVICE] as protoLoader.ServiceDefinition;
  }
  return cached;
}
