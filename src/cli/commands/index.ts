import type { Command } from "../command.js";
import { benchCommand } from "./bench.js";

/** Every command of the CLI, in the order `--help` lists them. */
export const commands: Command[] = [benchCommand];
