// Edge and device links to the validators' update consensus (docs/update-consensus.md).
export * from "./certified.ts";
export * from "./ledger_aggregator.ts";
export * from "./update_submitter.ts";
export * from "./wiring.ts";
export * from "./ledger_admin.ts";
