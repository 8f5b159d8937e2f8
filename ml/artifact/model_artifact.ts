// Saving and loading a trained model: a directory with
//   model.json          tfjs-style weights manifest (name, shape, dtype per tensor) + model config
//   weights.bin         all parameters, float32 little-endian, device part then edge part
//   preprocessing.json  the data preprocessor (ml/data Preprocessor.toJSON()), opaque here
//   metadata.json       threshold, class and feature names, dataset hash, metrics, training
// Checked both ways: before writing and after reading (sizes, layout fingerprint, SHA-256 of the
// weights, finiteness), so a truncated or edited artifact fails loudly, naming the file.
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { LabeledMatrix } from "../data/types.ts";
import { type ModelConfig, validateModelConfig } from "../model/config.ts";
import { assertFlatParams } from "../model/params.ts";
import { deviceLayout, edgeLayout } from "../model/split_model.ts";
import type { ClassificationReport } from "../metrics/classification.ts";

export const ARTIFACT_FORMAT = "iomt-sfl/split-cnn-lstm";
export const ARTIFACT_VERSION = 1;
export const ARTIFACT_FILE_BYTES_MAX = 512 * 2 ** 20;

export interface ModelMetadata {
  format: typeof ARTIFACT_FORMAT;
  version: typeof ARTIFACT_VERSION;
  createdAt: string;
  /** P(attack) >= threshold raises an alert; chosen on the validation split. */
  threshold: number;
  classNames: string[];
  featureNames: string[];
  /** SHA-256 (hex) of the training data (see hashLabeledMatrix) or of the source file. */
  datasetHash?: string;
  weightsSha256: string;
  metrics?: ClassificationReport;
  training?: Record<string, unknown>;
}

export interface ModelArtifact {
  config: ModelConfig;
  device: Float32Array;
  edge: Float32Array;
  /** Opaque to this module: ml/data's PreprocessorJson. */
  preprocessing: unknown;
  metadata: ModelMetadata;
}

interface ManifestJson {
  format: string;
  version: number;
  modelConfig: ModelConfig;
  weightsManifest: {
    paths: string[];
    weights: { name: string; shape: number[]; dtype: "float32" }[];
  }[];
}

async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", bytes as BufferSource);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** SHA-256 over feature names, features, labels and class names: identifies the training data. */
export async function hashLabeledMatrix(m: LabeledMatrix): Promise<string> {
  const names = new TextEncoder().encode(JSON.stringify([m.featureNames, m.classNames, m.rows]));
  const f = new Uint8Array(m.features.buffer, m.features.byteOffset, m.features.byteLength);
  const l = new Uint8Array(m.labels.buffer, m.labels.byteOffset, m.labels.byteLength);
  const all = new Uint8Array(names.length + f.length + l.length);
  all.set(names, 0);
  all.set(f, names.length);
  all.set(l, names.length + f.length);
  return await sha256Hex(all);
}

function checkArtifact(
  a: Omit<ModelArtifact, "metadata"> & { metadata: Omit<ModelMetadata, "weightsSha256"> },
  where: string,
) {
  validateModelConfig(a.config);
  assertFlatParams(a.device, deviceLayout(a.config), `${where}: device weights`);
  assertFlatParams(a.edge, edgeLayout(a.config), `${where}: edge weights`);
  const m = a.metadata;
  if (!(m.threshold >= 0 && m.threshold <= 1)) {
    throw new Error(`${where}: threshold ${m.threshold} outside [0, 1]`);
  }
  if (m.featureNames.length !== a.config.features) {
    throw new Error(
      `${where}: ${m.featureNames.length} feature names for a model of ${a.config.features} features`,
    );
  }
  if (a.config.classes > 2 && m.classNames.length !== a.config.classes) {
    throw new Error(
      `${where}: ${m.classNames.length} class names for a model of ${a.config.classes} classes`,
    );
  }
}

/** Writes the artifact into `dir` (created if needed); files are written to temporaries and
 * renamed so that a crash never leaves a half-written model.json next to old weights. */
export async function saveModel(
  dir: string,
  artifact: Omit<ModelArtifact, "metadata"> & {
    metadata: Omit<ModelMetadata, "weightsSha256" | "format" | "version">;
  },
): Promise<ModelMetadata> {
  const metadataIn = {
    ...artifact.metadata,
    format: ARTIFACT_FORMAT,
    version: ARTIFACT_VERSION,
  } as const;
  checkArtifact({ ...artifact, metadata: metadataIn }, `save ${dir}`);
  const dLayout = deviceLayout(artifact.config);
  const eLayout = edgeLayout(artifact.config);
  const weights = new Float32Array(dLayout.totalLength + eLayout.totalLength);
  weights.set(artifact.device, 0);
  weights.set(artifact.edge, dLayout.totalLength);
  const weightBytes = new Uint8Array(weights.buffer);
  const metadata: ModelMetadata = { ...metadataIn, weightsSha256: await sha256Hex(weightBytes) };
  const manifest: ManifestJson = {
    format: ARTIFACT_FORMAT,
    version: ARTIFACT_VERSION,
    modelConfig: artifact.config,
    weightsManifest: [{
      paths: ["weights.bin"],
      weights: [
        ...dLayout.entries.map((e) => ({
          name: `device/${e.name}`,
          shape: [...e.shape],
          dtype: "float32" as const,
        })),
        ...eLayout.entries.map((e) => ({
          name: `edge/${e.name}`,
          shape: [...e.shape],
          dtype: "float32" as const,
        })),
      ],
    }],
  };
  await mkdir(dir, { recursive: true });
  const files: [string, Uint8Array | string][] = [
    ["weights.bin", weightBytes],
    ["preprocessing.json", JSON.stringify(artifact.preprocessing ?? null, null, 1)],
    ["metadata.json", JSON.stringify(metadata, null, 1)],
    ["model.json", JSON.stringify(manifest, null, 1)],
  ];
  for (const [name, content] of files) {
    const temporary = join(dir, `.${name}.tmp`);
    await writeFile(temporary, content);
    await rename(temporary, join(dir, name));
  }
  return metadata;
}

async function readLimited(path: string): Promise<Uint8Array> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new Error(`model artifact: cannot read ${path}: ${(error as Error).message}`);
  }
  if (bytes.length > ARTIFACT_FILE_BYTES_MAX) {
    throw new Error(`model artifact: ${path} exceeds ${ARTIFACT_FILE_BYTES_MAX} bytes`);
  }
  return bytes;
}

async function readJson(path: string): Promise<unknown> {
  const text = new TextDecoder().decode(await readLimited(path));
  try {
    return JSON.parse(text);
  } catch (error) {
    throw new Error(`model artifact: ${path} is not valid JSON: ${(error as Error).message}`);
  }
}

export async function loadModel(dir: string): Promise<ModelArtifact> {
  const manifest = await readJson(join(dir, "model.json")) as ManifestJson;
  if (manifest?.format !== ARTIFACT_FORMAT || manifest.version !== ARTIFACT_VERSION) {
    throw new Error(
      `model artifact: ${
        join(dir, "model.json")
      } is not a ${ARTIFACT_FORMAT} v${ARTIFACT_VERSION} model`,
    );
  }
  const config = manifest.modelConfig;
  validateModelConfig(config);
  const dLayout = deviceLayout(config);
  const eLayout = edgeLayout(config);
  const expected = [
    ...dLayout.entries.map((e) => `device/${e.name}[${e.shape}]`),
    ...eLayout.entries.map((e) => `edge/${e.name}[${e.shape}]`),
  ];
  const listed = (manifest.weightsManifest?.[0]?.weights ?? []).map((w) => `${w.name}[${w.shape}]`);
  if (expected.join() !== listed.join()) {
    throw new Error(
      `model artifact: weights manifest does not match the model config in ${dir}/model.json`,
    );
  }
  const metadata = await readJson(join(dir, "metadata.json")) as ModelMetadata;
  const weightBytes = await readLimited(join(dir, "weights.bin"));
  const total = dLayout.totalLength + eLayout.totalLength;
  if (weightBytes.length !== total * 4) {
    throw new Error(
      `model artifact: ${dir}/weights.bin has ${weightBytes.length} bytes, expected ${total * 4}`,
    );
  }
  const digest = await sha256Hex(weightBytes);
  if (digest !== metadata.weightsSha256) {
    throw new Error(
      `model artifact: ${dir}/weights.bin does not match its SHA-256 in metadata.json`,
    );
  }
  const weights = new Float32Array(weightBytes.slice().buffer);
  const artifact: ModelArtifact = {
    config,
    device: weights.slice(0, dLayout.totalLength),
    edge: weights.slice(dLayout.totalLength),
    preprocessing: await readJson(join(dir, "preprocessing.json")),
    metadata,
  };
  checkArtifact(artifact, `model artifact ${dir}`);
  return artifact;
}
