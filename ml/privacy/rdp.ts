// Rényi-DP accountant for the (Poisson-)sampled Gaussian mechanism, integer orders only, as in
// Mironov, Talwar & Zhang 2019 ("Rényi Differential Privacy of the Sampled Gaussian Mechanism")
// and TF-Privacy / Google dp_accounting `_compute_log_a_int`; conversion to (ε, δ) by the
// improved bound of Balle et al. 2020 / Canonne, Kamath & Steinke 2020 that dp_accounting and
// Opacus use. Pure numbers, no tfjs: the CLI validates and reports with it before loading tfjs.
//
// Integer orders give a valid but slightly looser ε than a grid that also has fractional orders
// (Opacus' defaults); the tests quantify the difference on Opacus' reference case.

/** Orders 2..64 densely, then sparser up to 256 (as Opacus' and TF-Privacy's default grids):
 * the optimum for ε between ~0.1 and a few hundred at δ >= 1e-12 lies there, and the binomial
 * sum costs O(order) terms per order. */
export const RDP_ORDERS: readonly number[] = [
  ...Array.from({ length: 63 }, (_, i) => i + 2),
  ...[72, 80, 96, 112, 128, 160, 192, 224, 256],
];
export const RDP_ORDER_MAX = 1024;
export const STEPS_MAX = 1e9;
/** Bisection bounds for calibration: below 0.01 no ε in our range is reachable at any sane step
 * count; above 1e4 the noise drowns every activation. */
export const NOISE_MULTIPLIER_MIN = 0.01;
export const NOISE_MULTIPLIER_MAX = 1e4;

export interface SampledGaussian {
  /** Noise standard deviation divided by the L2 sensitivity (σ / Δ). */
  noiseMultiplier: number;
  /** Probability that a given record takes part in a step (Poisson sampling); 1 = every step. */
  samplingRate: number;
  /** Number of compositions. */
  steps: number;
}

export interface EpsilonResult {
  epsilon: number;
  delta: number;
  /** The Rényi order that gave the tightest bound. */
  order: number;
}

function checkMechanism(m: SampledGaussian): void {
  if (!(m.noiseMultiplier >= 0) || !Number.isFinite(m.noiseMultiplier)) {
    throw new RangeError(`noise multiplier ${m.noiseMultiplier} must be a finite number >= 0`);
  }
  if (!(m.samplingRate >= 0 && m.samplingRate <= 1)) {
    throw new RangeError(`sampling rate ${m.samplingRate} must be in [0, 1]`);
  }
  if (!Number.isInteger(m.steps) || m.steps < 0 || m.steps > STEPS_MAX) {
    throw new RangeError(`steps ${m.steps} must be an integer in 0..${STEPS_MAX}`);
  }
}

function checkOrder(order: number): void {
  if (!Number.isInteger(order) || order < 2 || order > RDP_ORDER_MAX) {
    throw new RangeError(`Rényi order ${order} must be an integer in 2..${RDP_ORDER_MAX}`);
  }
}

/** log(exp(a) + exp(b)) without overflow. */
function logAdd(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const hi = Math.max(a, b);
  return hi + Math.log1p(Math.exp(Math.min(a, b) - hi));
}

/** log C(n, k) as a sum of logs: JS has no lgamma, and n <= RDP_ORDER_MAX keeps this exact
 * enough (relative error ~1e-15 per term). */
function logBinomial(n: number, k: number): number {
  const m = Math.min(k, n - k);
  let sum = 0;
  for (let j = 1; j <= m; j++) sum += Math.log((n - m + j) / j);
  return sum;
}

/** log A_α for integer α: A_α = Σ_i C(α,i) (1-q)^(α-i) q^i exp((i² - i) / (2σ²)). */
export function logAInteger(samplingRate: number, noiseMultiplier: number, order: number): number {
  checkOrder(order);
  const q = samplingRate;
  let logA = -Infinity;
  for (let i = 0; i <= order; i++) {
    const term = logBinomial(order, i) + i * Math.log(q) + (order - i) * Math.log1p(-q) +
      (i * i - i) / (2 * noiseMultiplier * noiseMultiplier);
    logA = logAdd(logA, term);
  }
  return logA;
}

/** RDP ε(α) of `steps` compositions of the sampled Gaussian mechanism, for each order. */
export function computeRdp(m: SampledGaussian, orders: readonly number[] = RDP_ORDERS): number[] {
  checkMechanism(m);
  return orders.map((order) => {
    checkOrder(order);
    if (m.samplingRate === 0 || m.steps === 0) return 0;
    if (m.noiseMultiplier === 0) return Infinity;
    // q = 1 is the plain Gaussian mechanism: closed form (the sum would be exact too, but log(0)
    // terms make it a special case anyway).
    const perStep = m.samplingRate === 1
      ? order / (2 * m.noiseMultiplier * m.noiseMultiplier)
      : logAInteger(m.samplingRate, m.noiseMultiplier, order) / (order - 1);
    return perStep * m.steps;
  });
}

/** Smallest ε over orders such that the RDP curve implies (ε, δ)-DP. */
export function epsilonFromRdp(
  rdp: readonly number[],
  orders: readonly number[],
  delta: number,
): EpsilonResult {
  if (!(delta > 0 && delta < 1)) throw new RangeError(`delta ${delta} must be in (0, 1)`);
  if (rdp.length !== orders.length || rdp.length === 0) {
    throw new RangeError(`${rdp.length} RDP values for ${orders.length} orders`);
  }
  let best = { epsilon: Infinity, delta, order: orders[0] };
  for (let k = 0; k < orders.length; k++) {
    const alpha = orders[k];
    const r = rdp[k];
    if (!(r >= 0)) throw new RangeError(`RDP value ${r} at order ${alpha} must be >= 0`);
    let epsilon: number;
    if (delta * delta + Math.expm1(-r) > 0) {
      // KL bound: δ <= sqrt(1 - exp(-KL)) already holds with ε = 0.
      epsilon = 0;
    } else {
      epsilon = r + Math.log1p(-1 / alpha) - Math.log(delta * alpha) / (alpha - 1);
    }
    if (epsilon < best.epsilon) best = { epsilon: Math.max(0, epsilon), delta, order: alpha };
  }
  return best;
}

/** (ε, δ) of `steps` sampled-Gaussian compositions. */
export function epsilonOf(
  m: SampledGaussian,
  delta: number,
  orders: readonly number[] = RDP_ORDERS,
): EpsilonResult {
  return epsilonFromRdp(computeRdp(m, orders), orders, delta);
}

/** Smallest noise multiplier (within `tolerance`, relative) whose ε is at most `targetEpsilon`.
 * Throws when even NOISE_MULTIPLIER_MAX cannot reach it. */
export function calibrateNoiseMultiplier(
  target: { epsilon: number; delta: number; samplingRate: number; steps: number },
  tolerance = 1e-4,
  orders: readonly number[] = RDP_ORDERS,
): number {
  if (!(target.epsilon > 0) || !Number.isFinite(target.epsilon)) {
    throw new RangeError(`target epsilon ${target.epsilon} must be a finite number > 0`);
  }
  const eps = (sigma: number) =>
    epsilonOf(
      { noiseMultiplier: sigma, samplingRate: target.samplingRate, steps: target.steps },
      target.delta,
      orders,
    )
      .epsilon;
  let hi = 1;
  while (eps(hi) > target.epsilon) {
    hi *= 2;
    if (hi > NOISE_MULTIPLIER_MAX) {
      throw new RangeError(
        `no noise multiplier up to ${NOISE_MULTIPLIER_MAX} reaches epsilon ${target.epsilon} in ${target.steps} steps`,
      );
    }
  }
  let lo = hi / 2;
  if (eps(lo) <= target.epsilon) {
    while (lo > NOISE_MULTIPLIER_MIN && eps(lo / 2) <= target.epsilon) lo /= 2;
    hi = lo;
    lo = Math.max(NOISE_MULTIPLIER_MIN, lo / 2);
    if (eps(lo) <= target.epsilon) return lo;
  }
  // Invariant: eps(lo) > target >= eps(hi); ε decreases monotonically in σ.
  while ((hi - lo) / hi > tolerance) {
    const mid = (lo + hi) / 2;
    if (eps(mid) > target.epsilon) lo = mid;
    else hi = mid;
  }
  return hi;
}
