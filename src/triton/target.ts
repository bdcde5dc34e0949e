import { VideoAnalysisError } from "../errors.js";

export interface Endpoint {
  host: string;
  port: number;
}

/** "host:port", "[v6]:port", or a URL such as "grpc://host:port"; Triton's gRPC port 8001 by default. */
export function parseEndpoint(url: string, defaultPort = 8001): Endpoint {
  const s = url.replace(/^(grpcs?|https?|dns):\/\//, "").replace(/\/+$/, "");
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:/]+)(?::(\d+))?$/.exec(s);
  if (!m) throw new VideoAnalysisError("INVALID_ARGUMENT", `Triton URL "${url}" is not host:port (for example localhost:8001)`);
  const port = m[2] ? Number(m[2]) : defaultPort;
  if (!(port > 0 && port < 65536)) throw new VideoAnalysisError("INVALID_ARGUMENT", `Triton URL "${url}" has port ${m[2]}, outside 1-65535`);
  return { host: m[1]!, port };
}
