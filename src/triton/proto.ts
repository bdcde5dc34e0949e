import { fileURLToPath } from "node:url";
import * as grpc from "@grpc/grpc-js";
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

export type UnaryMethod = (
  request: unknown,
  metadata: grpc.Metadata,
  options: grpc.CallOptions,
  callback: (err: grpc.ServiceError | null, response?: any) => void,
) => grpc.ClientUnaryCall;

export interface InferenceServiceClient extends grpc.Client {
  [method: string]: any;
}

let cached: grpc.GrpcObject | undefined;

/** The loaded `inference` package (GRPCInferenceService and its messages). */
export function inferencePackage(): grpc.GrpcObject {
  if (!cached) {
    const def = protoLoader.loadSync(["grpc_service.proto"], LOADER_OPTIONS);
    cached = grpc.loadPackageDefinition(def).inference as grpc.GrpcObject;
  }
  return cached;
}

export function serviceClientConstructor(): grpc.ServiceClientConstructor {
  return inferencePackage().GRPCInferenceService as grpc.ServiceClientConstructor;
}
