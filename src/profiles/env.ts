/** The environment as profiles see it. */
export type Env = Readonly<Record<string, string | undefined>>;

export interface Substitution {
  value: string;
  /** Variables referenced with no default that the environment does not set. */
  missing: string[];
  /** Variables referenced (set or defaulted). */
  used: string[];
}

// ${NAME}, ${NAME:-default} (default when unset or empty), and $$ for a literal $.
const PATTERN = /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}/g;

/**
 * Substitutes `${VAR}` and `${VAR:-default}` from `env`, as a shell would: the default applies when the
 * variable is unset or empty. `$$` stands for a literal `$`. A variable without a default that is not
 * set is reported in `missing` (and left empty in `value`).
 *
 * @example
 * substituteEnv("${HOST:-localhost}:8001", {}) // { value: "localhost:8001", missing: [], used: ["HOST"] }
 */
export function substituteEnv(text: string, env: Env): Substitution {
  const missing: string[] = [];
  const used: string[] = [];
  const value = text.replace(PATTERN, (whole, name: string | undefined, def: string | undefined) => {
    if (whole === "$$") return "$";
    const v = env[name!];
    used.push(name!);
    if (v !== undefined && v !== "") return v;
    if (def !== undefined) return def;
    if (v === undefined) missing.push(name!);
    return "";
  });
  return { value, missing, used };
}

/** True when the text holds a `${...}` reference or a `$$` escape. */
export function hasSubstitution(text: string): boolean {
  PATTERN.lastIndex = 0;
  const found = PATTERN.test(text);
  PATTERN.lastIndex = 0;
  return found;
}
