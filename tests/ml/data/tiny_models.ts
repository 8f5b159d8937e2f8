// Tiny reference models for the synthetic-data tests: a logistic regression (linear baseline)
// and a one-hidden-layer MLP (a nonlinear model standing in for the CNN-BiLSTM). Plain TS,
// seeded, small enough to train in a second or two.
import { Rng } from "../../../ml/data/random.ts";
import type { LabeledMatrix } from "../../../ml/data/types.ts";

export interface BinaryModel {
  predict(features: Float32Array, row: number): number;
}

function binaryOf(m: LabeledMatrix): Int32Array {
  return m.labels.map((l) => (l === 0 ? 0 : 1));
}

/** Logistic regression, mini-batch SGD with momentum; predicts attack probability. */
export function trainLogistic(m: LabeledMatrix, seed: number, epochs = 30): BinaryModel {
  const d = m.featureNames.length;
  const y = binaryOf(m);
  const w = new Float64Array(d + 1);
  const v = new Float64Array(d + 1);
  const rng = new Rng(seed);
  const order = Int32Array.from({ length: m.rows }, (_, i) => i);
  const lr = 0.05;
  const batch = 64;
  const grad = new Float64Array(d + 1);
  for (let e = 0; e < epochs; e++) {
    rng.shuffle(order);
    for (let start = 0; start < m.rows; start += batch) {
      grad.fill(0);
      const end = Math.min(m.rows, start + batch);
      for (let k = start; k < end; k++) {
        const r = order[k];
        let z = w[d];
        for (let j = 0; j < d; j++) z += w[j] * m.features[r * d + j];
        const err = 1 / (1 + Math.exp(-z)) - y[r];
        for (let j = 0; j < d; j++) grad[j] += err * m.features[r * d + j];
        grad[d] += err;
      }
      for (let j = 0; j <= d; j++) {
        v[j] = 0.9 * v[j] - lr * (grad[j] / (end - start) + (j < d ? 1e-4 * w[j] : 0));
        w[j] += v[j];
      }
    }
  }
  return {
    predict(features, row) {
      let z = w[d];
      for (let j = 0; j < d; j++) z += w[j] * features[row * d + j];
      return 1 / (1 + Math.exp(-z));
    },
  };
}

/** One hidden layer (tanh), sigmoid output, Adam. */
export function trainMlp(m: LabeledMatrix, seed: number, hidden = 32, epochs = 20): BinaryModel {
  const d = m.featureNames.length;
  const y = binaryOf(m);
  const rng = new Rng(seed);
  const w1 = Float64Array.from({ length: hidden * d }, () => rng.normal(0, 1 / Math.sqrt(d)));
  const b1 = new Float64Array(hidden);
  const w2 = Float64Array.from({ length: hidden }, () => rng.normal(0, 1 / Math.sqrt(hidden)));
  let b2 = 0;
  const params = [w1, b1, w2];
  const grads = params.map((p) => new Float64Array(p.length));
  const m1 = params.map((p) => new Float64Array(p.length));
  const m2 = params.map((p) => new Float64Array(p.length));
  let gb2 = 0, mb2a = 0, mb2b = 0;
  const h = new Float64Array(hidden);
  const order = Int32Array.from({ length: m.rows }, (_, i) => i);
  const batch = 64;
  const lr = 0.003;
  let t = 0;
  for (let e = 0; e < epochs; e++) {
    rng.shuffle(order);
    for (let start = 0; start < m.rows; start += batch) {
      for (const g of grads) g.fill(0);
      gb2 = 0;
      const end = Math.min(m.rows, start + batch);
      for (let k = start; k < end; k++) {
        const r = order[k];
        const x = r * d;
        let z = b2;
        for (let i = 0; i < hidden; i++) {
          let a = b1[i];
          const wi = i * d;
          for (let j = 0; j < d; j++) a += w1[wi + j] * m.features[x + j];
          h[i] = Math.tanh(a);
          z += w2[i] * h[i];
        }
        const err = 1 / (1 + Math.exp(-z)) - y[r];
        gb2 += err;
        for (let i = 0; i < hidden; i++) {
          grads[2][i] += err * h[i];
          const dh = err * w2[i] * (1 - h[i] * h[i]);
          grads[1][i] += dh;
          const wi = i * d;
          for (let j = 0; j < d; j++) grads[0][wi + j] += dh * m.features[x + j];
        }
      }
      t++;
      const n = end - start;
      const c1 = 1 - Math.pow(0.9, t);
      const c2 = 1 - Math.pow(0.999, t);
      params.forEach((p, pi) => {
        const g = grads[pi];
        for (let j = 0; j < p.length; j++) {
          const gj = g[j] / n;
          m1[pi][j] = 0.9 * m1[pi][j] + 0.1 * gj;
          m2[pi][j] = 0.999 * m2[pi][j] + 0.001 * gj * gj;
          p[j] -= (lr * (m1[pi][j] / c1)) / (Math.sqrt(m2[pi][j] / c2) + 1e-8);
        }
      });
      const g = gb2 / n;
      mb2a = 0.9 * mb2a + 0.1 * g;
      mb2b = 0.999 * mb2b + 0.001 * g * g;
      b2 -= (lr * (mb2a / c1)) / (Math.sqrt(mb2b / c2) + 1e-8);
    }
  }
  return {
    predict(features, row) {
      let z = b2;
      for (let i = 0; i < hidden; i++) {
        let a = b1[i];
        for (let j = 0; j < d; j++) a += w1[i * d + j] * features[row * d + j];
        z += w2[i] * Math.tanh(a);
      }
      return 1 / (1 + Math.exp(-z));
    },
  };
}

export function accuracy(model: BinaryModel, m: LabeledMatrix): number {
  let hits = 0;
  for (let r = 0; r < m.rows; r++) {
    const p = model.predict(m.features, r) >= 0.5 ? 1 : 0;
    if (p === (m.labels[r] === 0 ? 0 : 1)) hits++;
  }
  return hits / m.rows;
}
