// Library API of iomt-sfl: the pieces a researcher or another program can use without the CLI.
export { buildProgram, VERSION } from "./cli/program.ts";
export {
  assertLabeledMatrix,
  binaryLabels,
  type LabeledMatrix,
  type LabelMode,
} from "./ml/data/types.ts";
