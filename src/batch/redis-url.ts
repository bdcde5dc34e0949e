/**
 * A Redis URL for messages and logs: user and password replaced by `***`
 * (`rediss://***@cache.example:6380/0`). The URL itself is never printed, nor written to jobs or manifests.
 */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    const auth = u.username || u.password ? "***@" : "";
    return `${u.protocol}//${auth}${u.host}${u.pathname === "/" ? "" : u.pathname}`;
  } catch {
    return "(a Redis URL that does not parse)";
  }
}
