import type { Command } from "../command.js";
import { benchCommand } from "./bench.js";
import { detectCommand } from "./detect.js";
import { mainCommand } from "./main.js";
import { trackCommand } from "./track.js";
import { routeCommand } from "./route.js";
import { smokeCommand } from "./smoke.js";
import { tritonRepoCommand } from "./triton-repo.js";

/** Every command of the CLI, in the order `--help` lists them. */
export const commands: Command[] = [mainCommand, benchCommand, routeCommand, tritonRepoCommand, smokeCommand, detectCommand, trackCommand];
