// `run`'s per-role niceness: defaults, overrides, and a bad override as a usage error.
import { assertEquals, assertThrows } from "../../assert.ts";
import { UsageError } from "../../../cli/usage_error.ts";
import { TRIAL_NICENESS, trialNiceness } from "../../../roles/run/run_trial.ts";

Deno.test("trial niceness: defaults, overrides per role, bad values refused", () => {
  assertEquals(trialNiceness(undefined), TRIAL_NICENESS);
  assertEquals(trialNiceness(" validator = 0 , device=5"), { edge: 0, device: 5, validator: 0 });
  for (const bad of ["validator=42", "validator", "gpu=1", "edge=-1", "edge=1x"]) {
    assertThrows(() => trialNiceness(bad), UsageError, `"${bad.trim()}" is not role=0..19`);
  }
});
