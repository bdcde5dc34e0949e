import { lookup } from "node:dns/promises";
import { isIP } from "node:net";
import { VideoAnalysisError } from "../errors.js";

export interface Endpoint {
  host: string;
  port: number;
}

/** "host:port", "[v6]:port", or a URL such as "grpc://host:port"; Triton's gRPC port 8001 by default. */
export function parseEndpoint(url: string): Endpoint {
  const s = url.replace(/^(grpcs?|https?|dns):\/\//, "");
  const m = /^\[([^\]]+)\](?::(\d+))?$/.exec(s) ?? /^([^:/]+)(?::(\d+))?$/.exec(s);
  if (!m) throw new VideoAnalysisError("INVALID_ARGUMENT", `Triton URL "${url}" is not host:port (for example localhost:8001)`);
  const port = m[2] ? Number(m[2]) : 8001;
  if (!(port > 0 && port < 65536)) throw new VideoAnalysisError("INVALID_ARGUMENT", `Triton URL "${url}" has port ${m[2]}, outside 1-65535`);
  return { host: m[1]!, port };
}

const hostPort = (h: string, p: number) => (isIP(h) === 6 ? `[${h}]:${p}` : `${h}:${p}`);

/**
 * The gRPC target for one or several endpoints. One endpoint keeps its name (gRPC's DNS resolver, TLS
 * name checks as usual). Several are resolved to addresses here and given to gRPC's ip resolver as one
 * list, so that gRPC's own round_robin policy spreads calls over them; `authority` keeps the first
 * host name for TLS and :authority.
 */
export async function resolveTarget(urls: readonly string[]): Promise<{ target: string; authority?: string }> {
  if (urls.length === 0) throw new VideoAnalysisError("INVALID_ARGUMENT", "no Triton URL given; set backend.url (or urls) in the profile");
  const eps = urls.map(parseEndpoint);
  if (eps.length === 1) return { target: `dns:///${hostPort(eps[0]!.host, eps[0]!.port)}` };
  const v4: string[] = [];
  const v6: string[] = [];
  for (const ep of eps) {
    let addrs: { address: string; family: number }[];
    try {
      addrs = isIP(ep.host) ? [{ address: ep.host, family: isIP(ep.host) }] : await lookup(ep.host, { all: true });
    } catch (e) {
      throw new VideoAnalysisError("UNAVAILABLE", `cannot resolve Triton host ${ep.host}: ${(e as Error).message}`);
    }
    for (const a of addrs) (a.family === 6 ? v6 : v4).push(hostPort(a.address, ep.port));
  }
  // gRPC's ip resolver takes one family per target; IPv4 is what Triton deployments listen on by default.
  const target = v4.length ? `ipv4:${[...new Set(v4)].join(",")}` : `ipv6:${[...new Set(v6)].join(",")}`;
  const first = eps[0]!;
  return { target, authority: isIP(first.host) ? undefined : hostPort(first.host, first.port) };
}
