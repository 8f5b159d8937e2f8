// Shape of the split CNN-(Bi)LSTM. The device part is sized for a microcontroller-class device;
// the edge part does the temporal modelling.

export interface ModelConfig {
  /** Feature columns per flow record (the "sequence" the Conv1D slides over). */
  features: number;
  /** Number of classes; 2 = binary (one sigmoid output), > 2 = softmax over classes. */
  classes: number;
  convFilters: number;
  convKernelSize: number;
  convLayers: number;
  /** LSTM units per direction. */
  lstmUnits: number;
  bidirectional: boolean;
  /** Hidden Dense layer (ReLU) between the LSTM and the output; 0 = none. */
  denseUnits: number;
  /** Each row's smashed activations scaled to L2 norm <= this (activation protection,
   * ml/privacy): part of the device function, so training, evaluation and detection agree.
   * Absent = no clipping. */
  activationClipNorm?: number;
}

export const MODEL_LIMITS = {
  featuresMax: 4096,
  classesMax: 256,
  convFiltersMax: 512,
  convKernelSizeMax: 31,
  convLayersMax: 6,
  lstmUnitsMax: 1024,
  denseUnitsMax: 4096,
} as const;

export function defaultModelConfig(features: number, classes = 2): ModelConfig {
  return {
    features,
    classes,
    convFilters: 32,
    convKernelSize: 3,
    convLayers: 1,
    lstmUnits: 64,
    bidirectional: true,
    denseUnits: 32,
  };
}

/** Max-pooling halves the length per conv layer. */
export function smashedSteps(config: ModelConfig): number {
  return Math.floor(config.features / 2 ** config.convLayers);
}

/** Output units: 1 logit for binary, one per class otherwise. */
export function outputUnits(config: ModelConfig): number {
  return config.classes === 2 ? 1 : config.classes;
}

export function validateModelConfig(config: ModelConfig): void {
  const intIn = (name: keyof ModelConfig, min: number, max: number) => {
    const value = config[name];
    if (typeof value !== "number" || !Number.isInteger(value) || value < min || value > max) {
      throw new Error(`model config: ${name}=${value} must be an integer in ${min}..${max}`);
    }
  };
  intIn("features", 1, MODEL_LIMITS.featuresMax);
  intIn("classes", 2, MODEL_LIMITS.classesMax);
  intIn("convFilters", 1, MODEL_LIMITS.convFiltersMax);
  intIn("convKernelSize", 1, MODEL_LIMITS.convKernelSizeMax);
  intIn("convLayers", 1, MODEL_LIMITS.convLayersMax);
  intIn("lstmUnits", 1, MODEL_LIMITS.lstmUnitsMax);
  intIn("denseUnits", 0, MODEL_LIMITS.denseUnitsMax);
  if (typeof config.bidirectional !== "boolean") {
    throw new Error("model config: bidirectional must be boolean");
  }
  const clip = config.activationClipNorm;
  if (clip !== undefined && !(typeof clip === "number" && clip > 0 && clip <= 1e6)) {
    throw new Error(`model config: activationClipNorm=${clip} must be a number in (0, 1e6]`);
  }
  if (smashedSteps(config) < 1) {
    throw new Error(
      `model config: ${config.features} features cannot be pooled ${config.convLayers} times (need >= ${
        2 ** config.convLayers
      })`,
    );
  }
}
