// Byzantine behaviours as wrappers around an honest replica: the honest core runs unchanged and
// the wrapper rewrites, multiplies or drops what it sends. One wrapper per Byzantine replica.
import { buildBlock } from "./app.ts";
import type { Prng } from "./prng.ts";
import type { ByzantineBehaviour } from "./scenario.ts";
import type { Commit, Entries, Prepare, PrePrepare, ProtocolMessage } from "../pbft/types.ts";

export interface Outgoing {
  readonly to: number;
  readonly message: ProtocolMessage;
}

export interface ByzantineContext {
  readonly self: number;
  readonly replicaCount: number;
  readonly random: Prng;
  /** Signs with this replica's own key (the only key it has). */
  readonly sign: <T extends ProtocolMessage>(message: T) => T;
}

export interface ByzantineWrapper {
  readonly behaviour: ByzantineBehaviour;
  outgoing(messages: Outgoing[]): Outgoing[];
  observe(message: ProtocolMessage): void;
}

const REPLAY_MEMORY_MAX = 64;

export function createByzantineWrapper(
  behaviour: ByzantineBehaviour,
  context: ByzantineContext,
): ByzantineWrapper {
  const { self, random, sign } = context;
  const alternativeOf = new Map<string, string>();
  const remembered: ProtocolMessage[] = [];
  const secondGroup = (to: number) => to !== self && to % 2 === 1;
  const randomHash = () => {
    let hex = "";
    for (let i = 0; i < 8; i++) hex += random.nextU32().toString(16).padStart(8, "0");
    return hex;
  };

  const outgoing = (messages: Outgoing[]): Outgoing[] => {
    switch (behaviour) {
      case "silent":
        return [];
      case "equivocate":
        // Different pre-prepares to the two halves of the backups, with votes to match.
        return messages.map(({ to, message }) => {
          if (!secondGroup(to)) return { to, message };
          if (message.kind === "pre-prepare") {
            const block = buildBlock(
              message.height,
              message.parentBlockHash,
              message.requestIds,
              `evil-${message.view}`,
            );
            alternativeOf.set(message.blockHash, block.blockHash);
            const variant: PrePrepare = {
              ...message,
              payload: block.payload,
              blockHash: block.blockHash,
              signature: "",
            };
            return { to, message: sign(variant) };
          }
          if (message.kind === "prepare" || message.kind === "commit") {
            const alternative = alternativeOf.get(message.blockHash);
            if (alternative) {
              return { to, message: sign({ ...message, blockHash: alternative, signature: "" }) };
            }
          }
          return { to, message };
        });
      case "conflicting-votes":
        return messages.map(({ to, message }) => {
          if (
            secondGroup(to) &&
            (message.kind === "prepare" || message.kind === "commit" ||
              message.kind === "checkpoint")
          ) {
            return { to, message: sign({ ...message, blockHash: randomHash(), signature: "" }) };
          }
          return { to, message };
        });
      case "forge-signatures": {
        const extra: Outgoing[] = [];
        for (const { to, message } of messages) {
          if (to === self || !random.chance(0.3)) continue;
          const victim = (self + 1 + random.int(context.replicaCount - 1)) %
            context.replicaCount;
          if (message.kind === "prepare" || message.kind === "commit") {
            // Claims to be another validator; the signature cannot be right.
            const forged: Prepare | Commit = {
              ...message,
              replica: victim,
              blockHash: randomHash(),
              signature: randomHash(),
            };
            extra.push({ to, message: forged });
          } else if (message.kind === "status") {
            // Validly signed outer message carrying a forged commit certificate.
            const height = message.lastExecutedHeight + 1;
            const blockHash = randomHash();
            const certificate: Commit[] = [...Array(context.replicaCount).keys()].map((i) => ({
              kind: "commit",
              chainId: message.chainId,
              view: message.view,
              height,
              blockHash,
              replica: i,
              signature: i === self ? "" : randomHash(),
            }));
            const entries: Entries = {
              kind: "entries",
              chainId: message.chainId,
              entries: [{
                height,
                view: message.view,
                blockHash,
                payload: new Uint8Array(8),
                requestIds: [],
                certificate: certificate.map((commit) =>
                  commit.replica === self ? sign(commit) : commit
                ),
              }],
              replica: self,
              signature: "",
            };
            extra.push({ to, message: sign(entries) });
          }
        }
        return [...messages, ...extra];
      }
      case "replay": {
        const extra: Outgoing[] = [];
        if (remembered.length > 0 && random.chance(0.5)) {
          extra.push({ to: random.int(context.replicaCount), message: random.pick(remembered) });
        }
        return [...messages, ...extra];
      }
    }
  };

  const observe = (message: ProtocolMessage) => {
    if (behaviour !== "replay") return;
    if (remembered.length < REPLAY_MEMORY_MAX) remembered.push(message);
    else remembered[random.int(REPLAY_MEMORY_MAX)] = message;
  };

  return { behaviour, outgoing, observe };
}
