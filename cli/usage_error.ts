/** A problem with how the command was called. main.ts prints it on one line and exits 2. */
export class UsageError extends Error {
  override name = "UsageError";
}

/** Exit codes of every iomt-sfl command. */
export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
