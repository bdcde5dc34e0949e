/**
 * Whether a process with this id exists (signal 0 asks without sending one; EPERM means it exists under
 * another user). Used to sweep files that processes killed before they could clean up left behind.
 */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}
