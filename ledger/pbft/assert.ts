// Invariant checks for program bugs. Bad input from the network never reaches these: it is
// rejected with a reason before any state changes.
export class InvariantViolation extends Error {
  override name = "InvariantViolation";
}

export function invariant(condition: unknown, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(message);
}
