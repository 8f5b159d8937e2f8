// Embedded default data: a seeded simulation of IoMT traffic in the WUSTL-EHMS-2020 schema
// (Argus flow features + patient biometrics), with several patients and device types, normal
// behaviour and five attack classes that overlap normal traffic in realistic ways. The
// generative model is documented in docs/synthetic-data.md; keep the two in step.
import { closeSync, openSync, renameSync, unlinkSync, writeSync } from "node:fs";
import process from "node:process";
import { Rng } from "./random.ts";
import type { RawRecord, RecordBatch, RecordSource } from "./records.ts";

export const SYNTHETIC_ROWS_MAX = 50_000_000;

export const SYNTHETIC_HEADER = [
  "StartTime",
  "Dir",
  "Flgs",
  "SrcAddr",
  "DstAddr",
  "Sport",
  "Dport",
  "SrcBytes",
  "DstBytes",
  "SrcLoad",
  "DstLoad",
  "SrcGap",
  "DstGap",
  "SIntPkt",
  "DIntPkt",
  "SIntPktAct",
  "DIntPktAct",
  "SrcJitter",
  "DstJitter",
  "sMaxPktSz",
  "dMaxPktSz",
  "sMinPktSz",
  "dMinPktSz",
  "Dur",
  "Trans",
  "TotPkts",
  "TotBytes",
  "Load",
  "Loss",
  "pLoss",
  "pSrcLoss",
  "pDstLoss",
  "Rate",
  "SrcMac",
  "DstMac",
  "Packet_num",
  "Temp",
  "SpO2",
  "Pulse_Rate",
  "SYS",
  "DIA",
  "Heart_rate",
  "Resp_Rate",
  "ST",
  "Attack Category",
  "Label",
] as const;

export const SYNTHETIC_CLASSES = [
  "normal",
  "Spoofing",
  "Data Alteration",
  "DoS",
  "Scanning",
  "Replay",
] as const;
type AttackClass = typeof SYNTHETIC_CLASSES[number];

interface DeviceType {
  name: string;
  /** Seconds between flow records. */
  periodS: number;
  /** Median data-packet size, bytes. */
  packetBytes: number;
  /** Median source packets per flow. */
  packets: number;
  /** Median inter-packet time, ms. */
  interPacketMs: number;
  /** Median jitter, ms (wired/BLE low, Wi-Fi high). */
  jitterMs: number;
  port: number;
}

const DEVICE_TYPES: readonly DeviceType[] = [
  {
    name: "ecg",
    periodS: 1,
    packetBytes: 380,
    packets: 8,
    interPacketMs: 3.5,
    jitterMs: 1.6,
    port: 1111,
  },
  {
    name: "pulse-oximeter",
    periodS: 2,
    packetBytes: 150,
    packets: 5,
    interPacketMs: 6,
    jitterMs: 3.2,
    port: 1111,
  },
  {
    name: "bp-cuff",
    periodS: 8,
    packetBytes: 120,
    packets: 6,
    interPacketMs: 9,
    jitterMs: 6.5,
    port: 8883,
  },
  {
    name: "thermometer",
    periodS: 5,
    packetBytes: 90,
    packets: 4,
    interPacketMs: 7,
    jitterMs: 4.5,
    port: 8883,
  },
  {
    name: "bedside-monitor",
    periodS: 1,
    packetBytes: 620,
    packets: 11,
    interPacketMs: 2.5,
    jitterMs: 2.2,
    port: 1111,
  },
];

interface Vitals {
  temp: number;
  spo2: number;
  hr: number;
  sys: number;
  dia: number;
  resp: number;
  st: number;
}

interface Patient {
  baseline: Vitals;
  state: Vitals;
  /** Seconds left in a benign clinical episode (tachycardia / desaturation); 0 = none. */
  episodeS: number;
}

interface Device {
  index: number;
  type: DeviceType;
  patient: Patient;
  address: string;
  mac: string;
  nextTime: number;
  sport: number;
  /** Ward congestion felt by this device, 0..1 (AR(1)). */
  congestion: number;
  /** Recent normal flows, replayed by the replay attack. */
  history: Flow[];
}

interface Flow {
  flgs: string;
  sport: number;
  dport: number;
  srcPkts: number;
  dstPkts: number;
  sMax: number;
  dMax: number;
  sMin: number;
  dMin: number;
  srcBytes: number;
  dstBytes: number;
  sIntPktMs: number;
  dIntPktMs: number;
  sIntPktActMs: number;
  srcJitterMs: number;
  dstJitterMs: number;
  durS: number;
  srcLoss: number;
  dstLoss: number;
  vitals: Vitals;
}

interface Episode {
  kind: Exclude<AttackClass, "normal">;
  /** Devices under attack (the first is the flood / scan target). */
  targets: number[];
  endTime: number;
  /** Low-rate / stealthy variant of DoS and scanning. */
  low: boolean;
  /** Share of the target's flows intercepted (MITM-type attacks). */
  share: number;
  nextAttackerTime: number;
  /** Data alteration: which manipulation. */
  mode: number;
}

const GATEWAY_ADDRESS = "10.0.1.150";
const GATEWAY_MAC = "b8:ca:3a:cf:0b:87";
const ATTACKER_ADDRESS = "10.0.1.66";
const ATTACKER_MACS = ["02:42:ac:11:00:66", "02:42:ac:11:00:67"];
const EPOCH_S = 1_700_000_000;
const HISTORY_FLOWS = 256;
const ATTACK_KINDS = ["Spoofing", "Data Alteration", "DoS", "Scanning", "Replay"] as const;
/** Mean quiet time between attack episodes, seconds. */
const EPISODE_GAP_MEAN_S = 45;

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : x > hi ? hi : x;
}

function makePatient(rng: Rng): Patient {
  const sys = rng.uniform(104, 148);
  const baseline: Vitals = {
    temp: rng.normal(36.8, 0.3),
    spo2: rng.uniform(94.5, 99),
    hr: rng.uniform(58, 98),
    sys,
    dia: sys * rng.uniform(0.58, 0.68),
    resp: rng.uniform(12, 20),
    st: rng.normal(0.04, 0.07),
  };
  return { baseline, state: { ...baseline }, episodeS: 0 };
}

/** Ornstein-Uhlenbeck step towards the baseline, plus benign clinical episodes. */
function stepPatient(rng: Rng, p: Patient, dtS: number): void {
  const pull = 1 - Math.exp(-dtS / 600);
  const noise = Math.sqrt(Math.min(dtS, 60) / 60);
  if (p.episodeS > 0) p.episodeS = Math.max(0, p.episodeS - dtS);
  else if (rng.chance(dtS / 5400)) p.episodeS = rng.uniform(120, 900);
  const episode = p.episodeS > 0 ? 1 : 0;
  const target = p.baseline;
  const s = p.state;
  s.temp += (target.temp + 0.4 * episode - s.temp) * pull + rng.normal(0, 0.03) * noise;
  s.spo2 += (target.spo2 - 3.5 * episode - s.spo2) * pull * 3 + rng.normal(0, 0.25) * noise;
  s.hr += (target.hr + 28 * episode - s.hr) * pull * 3 + rng.normal(0, 1.2) * noise;
  s.sys += (target.sys + 12 * episode - s.sys) * pull + rng.normal(0, 1.0) * noise;
  s.dia += (target.dia + 6 * episode - s.dia) * pull + rng.normal(0, 0.7) * noise;
  s.resp += (target.resp + 5 * episode - s.resp) * pull + rng.normal(0, 0.3) * noise;
  s.st += (target.st - s.st) * pull + rng.normal(0, 0.01) * noise;
}

/** Sensor readings: noisy, rounded; heart rate is measured twice (ECG and oximeter). */
function readVitals(rng: Rng, s: Vitals): Vitals {
  const v: Vitals = {
    temp: Math.round((s.temp + rng.normal(0, 0.08)) * 10) / 10,
    spo2: Math.round(clamp(s.spo2 + rng.normal(0, 0.6), 70, 100)),
    hr: Math.round(s.hr + rng.normal(0, 1.5)),
    sys: Math.round(s.sys + rng.normal(0, 2.5)),
    dia: Math.round(s.dia + rng.normal(0, 2)),
    resp: Math.round(s.resp + rng.normal(0, 0.8)),
    st: Math.round((s.st + rng.normal(0, 0.03)) * 100) / 100,
  };
  return v;
}

function normalFlow(rng: Rng, d: Device): Flow {
  const t = d.type;
  const c = d.congestion;
  const srcPkts = Math.max(2, Math.round(rng.logNormal(t.packets, 0.18)));
  const dstPkts = Math.max(1, Math.round(srcPkts * rng.uniform(0.35, 0.65)));
  const sMax = Math.round(t.packetBytes * rng.logNormal(1, 0.06));
  const dMax = rng.chance(0.8) ? 66 : Math.round(rng.uniform(70, 140));
  const fill = clamp(rng.normal(0.6, 0.08), 0.2, 1);
  const srcBytes = Math.round(srcPkts * (60 + (sMax - 60) * fill));
  const dstBytes = Math.round(dstPkts * (dMax === 66 ? 62 : 60 + (dMax - 60) * 0.5));
  const sIntPktMs = t.interPacketMs * (1 + 0.7 * c) * rng.logNormal(1, 0.2);
  const dIntPktMs = sIntPktMs * rng.logNormal(0.55, 0.25);
  const lossP = 0.002 + 0.03 * c * c;
  let srcLoss = 0;
  for (let i = 0; i < srcPkts; i++) if (rng.chance(lossP)) srcLoss++;
  const dstLoss = rng.chance(lossP * dstPkts) ? 1 : 0;
  return {
    flgs: "",
    sport: 0,
    dport: t.port,
    srcPkts,
    dstPkts,
    sMax,
    dMax,
    sMin: 60,
    dMin: 60,
    srcBytes,
    dstBytes,
    sIntPktMs,
    dIntPktMs,
    sIntPktActMs: rng.chance(0.1) ? sIntPktMs * rng.uniform(0.2, 0.9) : 0,
    srcJitterMs: t.jitterMs * (1 + 1.2 * c) * rng.logNormal(1, 0.35),
    dstJitterMs: t.jitterMs * 0.8 * (1 + 1.2 * c) * rng.logNormal(1, 0.4),
    durS: (sIntPktMs * (srcPkts - 1) / 1000) * rng.logNormal(1, 0.1),
    srcLoss,
    dstLoss,
    vitals: readVitals(rng, d.patient.state),
  };
}

function dropouts(rng: Rng, v: Vitals): Vitals {
  // A loose probe reads 0 now and then (WUSTL-EHMS has such zeros in normal traffic too).
  if (!rng.chance(0.012)) return v;
  const out = { ...v };
  const which = rng.int(3);
  if (which === 0) out.spo2 = 0;
  else if (which === 1) out.hr = 0;
  else out.temp = 0;
  return out;
}

/** MITM relay: the attacker forwards the flow, adding a little delay and jitter. */
function relay(rng: Rng, f: Flow, strength: number): Flow {
  const delay = 1 + strength * rng.uniform(0.05, 0.45);
  const jitter = Math.exp(rng.normal(Math.log(1 + strength * 0.7), 0.3));
  const arp = rng.chance(0.25 * strength);
  return {
    ...f,
    sIntPktMs: f.sIntPktMs * delay,
    dIntPktMs: f.dIntPktMs * delay * rng.logNormal(1, 0.1),
    srcJitterMs: f.srcJitterMs * jitter,
    dstJitterMs: f.dstJitterMs * jitter * rng.logNormal(1, 0.15),
    durS: f.durS * delay,
    srcPkts: f.srcPkts + (arp ? 1 : 0),
    dstPkts: f.dstPkts + (arp ? 1 : 0),
    srcBytes: f.srcBytes + (arp ? 42 : 0),
    dstBytes: f.dstBytes + (arp ? 42 : 0),
    sMin: arp ? 42 : f.sMin,
    dMin: arp ? 42 : f.dMin,
  };
}

function alterVitals(rng: Rng, v: Vitals, mode: number): Vitals {
  const out = { ...v };
  const sign = rng.chance(0.5) ? 1 : -1;
  switch (mode) {
    case 0: // heart rate from one sensor only: the two readings disagree
      out.hr = Math.round(v.hr + sign * rng.uniform(9, 30));
      break;
    case 1: // fake desaturation or fake recovery
      out.spo2 = Math.round(
        clamp(v.spo2 + (sign < 0 ? -rng.uniform(3, 8) : rng.uniform(1, 3)), 70, 100),
      );
      break;
    case 2: // fever hidden or invented
      out.temp = Math.round((v.temp + sign * rng.uniform(0.6, 1.8)) * 10) / 10;
      break;
    default: // blood pressure pair made implausible (pulse pressure too narrow or too wide)
      if (sign > 0) out.dia = Math.round(v.sys - rng.uniform(4, 18));
      else out.sys = Math.round(v.sys + rng.uniform(20, 45));
      break;
  }
  return out;
}

function dosFlow(rng: Rng, d: Device, low: boolean): Flow {
  const srcPkts = low ? Math.round(rng.logNormal(14, 0.35)) : Math.round(rng.logNormal(400, 0.7));
  const sIntPktMs = low ? rng.logNormal(2.2, 0.35) : rng.logNormal(0.12, 0.6);
  const sMax = Math.round(low ? rng.uniform(90, 400) : rng.uniform(60, 130));
  const lossP = low ? 0.01 : 0.08;
  let srcLoss = 0;
  const sampled = Math.min(srcPkts, 500);
  for (let i = 0; i < sampled; i++) if (rng.chance(lossP)) srcLoss++;
  srcLoss = Math.round(srcLoss * srcPkts / sampled);
  const dstPkts = Math.max(1, Math.round(srcPkts * rng.uniform(0.1, low ? 0.6 : 0.3)));
  return {
    flgs: "",
    sport: 0,
    dport: d.type.port,
    srcPkts,
    dstPkts,
    sMax,
    dMax: 66,
    sMin: 60,
    dMin: 60,
    srcBytes: Math.round(srcPkts * (60 + (sMax - 60) * rng.uniform(0.4, 0.9))),
    dstBytes: dstPkts * 62,
    sIntPktMs,
    dIntPktMs: sIntPktMs * rng.logNormal(1.5, 0.4),
    sIntPktActMs: 0,
    srcJitterMs: sIntPktMs * rng.logNormal(0.6, 0.5),
    dstJitterMs: sIntPktMs * rng.logNormal(1.2, 0.5),
    durS: (sIntPktMs * (srcPkts - 1)) / 1000,
    srcLoss,
    dstLoss: rng.chance(0.3) ? 1 : 0,
    vitals: readVitals(rng, d.patient.state),
  };
}

const SCAN_PORTS = [
  21,
  22,
  23,
  25,
  53,
  80,
  110,
  135,
  139,
  143,
  443,
  445,
  502,
  1883,
  3306,
  3389,
  5900,
  8080,
];

function scanFlow(rng: Rng, d: Device, low: boolean): Flow {
  // Stealthy scans talk to the real service with a short probe; loud ones sweep ports.
  const probe = low && rng.chance(0.7);
  const srcPkts = probe ? Math.round(rng.uniform(3, 6)) : rng.chance(0.8) ? 1 : 2;
  const answered = probe || rng.chance(0.3);
  const dstPkts = answered ? (probe ? Math.round(rng.uniform(2, 4)) : 1) : 0;
  const sMax = probe ? Math.round(rng.uniform(70, 160)) : 60;
  const sIntPktMs = srcPkts > 1 ? rng.logNormal(probe ? 6 : 1, 0.5) : 0;
  return {
    flgs: "",
    sport: 0,
    dport: probe
      ? d.type.port
      : rng.chance(0.6)
      ? SCAN_PORTS[rng.int(SCAN_PORTS.length)]
      : 1 + rng.int(10000),
    srcPkts,
    dstPkts,
    sMax,
    dMax: dstPkts > 0 ? 66 : 0,
    sMin: 60,
    dMin: dstPkts > 0 ? 60 : 0,
    srcBytes: Math.round(srcPkts * (probe ? 60 + (sMax - 60) * 0.6 : 60)),
    dstBytes: dstPkts * 62,
    sIntPktMs,
    dIntPktMs: dstPkts > 1 ? sIntPktMs * rng.logNormal(0.6, 0.3) : 0,
    sIntPktActMs: 0,
    srcJitterMs: srcPkts > 1 ? sIntPktMs * rng.logNormal(0.4, 0.5) : 0,
    dstJitterMs: dstPkts > 1 ? sIntPktMs * rng.logNormal(0.4, 0.5) : 0,
    durS: srcPkts > 1 ? (sIntPktMs * (srcPkts - 1)) / 1000 : rng.uniform(0, 0.0004),
    srcLoss: 0,
    dstLoss: 0,
    vitals: readVitals(rng, d.patient.state),
  };
}

/** Replays a recorded flow of the device: same shape, stale biometrics, tighter timing. */
function replayFlow(rng: Rng, d: Device): Flow | null {
  if (d.history.length < 16) return null;
  // An old capture: from the first half of the remembered flows.
  const old = d.history[rng.int(Math.floor(d.history.length / 2))];
  const tight = rng.uniform(0.55, 0.95);
  return {
    ...old,
    sIntPktMs: old.sIntPktMs * tight,
    dIntPktMs: old.dIntPktMs * rng.uniform(0.8, 1.2),
    srcJitterMs: old.srcJitterMs * rng.uniform(0.3, 0.85),
    durS: old.durS * tight,
    srcLoss: 0,
  };
}

const POWERS_OF_TEN = [1, 10, 100, 1000, 1e4, 1e5, 1e6];
/** Rounds to `digits` decimals and prints the shortest form ("0.4", "558.295"), like WUSTL. */
const fmt = (x: number, digits: number) => {
  const scale = POWERS_OF_TEN[digits];
  const rounded = Math.round(x * scale) / scale;
  return rounded === 0 ? "0" : String(rounded);
};

function flags(f: Flow): string {
  const code = f.srcLoss > 0 && f.dstLoss > 0
    ? "e *"
    : f.srcLoss > 0
    ? "e s"
    : f.dstLoss > 0
    ? "e d"
    : "e";
  return ` ${code.padEnd(9)}`;
}

function toFields(
  f: Flow,
  timeS: number,
  src: { address: string; mac: string },
  packetNumber: number,
  cls: AttackClass,
  ecgHeartRate: number,
): string[] {
  const totPkts = f.srcPkts + f.dstPkts;
  const totBytes = f.srcBytes + f.dstBytes;
  const dur = Math.max(f.durS, 1e-6);
  const srcLoad = f.srcBytes * 8 / dur;
  const dstLoad = f.dstBytes * 8 / dur;
  const loss = f.srcLoss + f.dstLoss;
  const v = f.vitals;
  return [
    fmt(EPOCH_S + timeS, 6),
    "   ->",
    flags(f),
    src.address,
    GATEWAY_ADDRESS,
    String(f.sport),
    String(f.dport),
    String(f.srcBytes),
    String(f.dstBytes),
    fmt(srcLoad, 0),
    fmt(dstLoad, 0),
    "0",
    "0",
    fmt(f.sIntPktMs, 6),
    fmt(f.dIntPktMs, 6),
    fmt(f.sIntPktActMs, 6),
    "0",
    fmt(f.srcJitterMs, 6),
    fmt(f.dstJitterMs, 6),
    String(f.sMax),
    String(f.dMax),
    String(f.sMin),
    String(f.dMin),
    fmt(dur, 6),
    "1",
    String(totPkts),
    String(totBytes),
    fmt(srcLoad + dstLoad, 0),
    String(loss),
    fmt((100 * loss) / totPkts, 3),
    fmt((100 * f.srcLoss) / Math.max(f.srcPkts, 1), 3),
    fmt((100 * f.dstLoss) / Math.max(f.dstPkts, 1), 3),
    fmt(totPkts / dur, 3),
    src.mac,
    GATEWAY_MAC,
    String(packetNumber),
    fmt(v.temp, 1),
    String(v.spo2),
    String(v.hr),
    String(v.sys),
    String(v.dia),
    String(ecgHeartRate),
    String(v.resp),
    fmt(v.st, 2),
    cls,
    cls === "normal" ? "0" : "1",
  ];
}

export interface SyntheticOptions {
  rows: number;
  seed: number;
  /** Patients (one or two devices each); default 6. */
  patients?: number;
}

/** Yields the synthetic data set row by row (string fields in SYNTHETIC_HEADER order). */
export function* generateSyntheticRows(options: SyntheticOptions): Generator<string[]> {
  const { rows, seed } = options;
  if (!Number.isInteger(rows) || rows < 1 || rows > SYNTHETIC_ROWS_MAX) {
    throw new Error(`synthetic: rows must be 1..${SYNTHETIC_ROWS_MAX}, got ${rows}`);
  }
  const rng = new Rng(seed);
  const patientCount = options.patients ?? 6;
  const devices: Device[] = [];
  for (let p = 0; p < patientCount; p++) {
    const patient = makePatient(rng);
    const count = rng.chance(0.5) ? 2 : 1;
    for (let k = 0; k < count; k++) {
      const type = DEVICE_TYPES[(p * 2 + k * 3 + rng.int(2)) % DEVICE_TYPES.length];
      const index = devices.length;
      devices.push({
        index,
        type,
        patient,
        address: `10.0.1.${172 + index}`,
        mac: `84:3a:4b:0f:5b:${(0x94 + index).toString(16).padStart(2, "0")}`,
        nextTime: rng.uniform(0, type.periodS),
        sport: 49152 + rng.int(8000),
        congestion: rng.uniform(0, 0.3),
        history: [],
      });
    }
  }
  let episode: Episode | null = null;
  const bag: Episode["kind"][] = [];
  let nextEpisodeTime = rng.exponential(EPISODE_GAP_MEAN_S);
  let now = 0;
  let lastPatientStep = 0;
  let packetNumber = 0;
  let attackerSport = 40000;

  // Pulse_Rate is the oximeter's reading (flow.vitals.hr); Heart_rate is the ECG's, taken from
  // the patient's true state, so an altered Pulse_Rate disagrees with it while a natural change
  // moves both.
  const emit = (f: Flow, cls: AttackClass, src: { address: string; mac: string }, ecg: number) => {
    packetNumber++;
    return toFields(f, now, src, packetNumber, cls, ecg);
  };

  for (let produced = 0; produced < rows;) {
    // Next event: a device flow or an attacker flow, whichever comes first.
    let device = devices[0];
    for (const d of devices) if (d.nextTime < device.nextTime) device = d;
    const attackerTime = episode && (episode.kind === "DoS" || episode.kind === "Scanning")
      ? episode.nextAttackerTime
      : Infinity;
    now = Math.min(device.nextTime, attackerTime);
    if (now - lastPatientStep >= 1) {
      const dt = now - lastPatientStep;
      const stepped = new Set<Patient>();
      for (const d of devices) {
        if (!stepped.has(d.patient)) stepPatient(rng, d.patient, dt);
        stepped.add(d.patient);
        // Ward congestion: AR(1), pushed up while a flood is running.
        const flood = episode?.kind === "DoS" ? (episode.low ? 0.15 : 0.45) : 0;
        d.congestion = clamp(
          0.97 * d.congestion + 0.03 * (0.15 + flood) + rng.normal(0, 0.03),
          0,
          1,
        );
      }
      lastPatientStep = now;
    }
    if (episode && now >= episode.endTime) {
      episode = null;
      nextEpisodeTime = now + rng.exponential(EPISODE_GAP_MEAN_S);
    }
    if (!episode && now >= nextEpisodeTime) {
      // Kinds come from a shuffled bag, so every attack class shows up within five episodes.
      if (bag.length === 0) bag.push(...rng.shuffle([...ATTACK_KINDS]));
      const kind = bag.pop()!;
      // A MITM on the ward's switch reaches several devices at once.
      const targets = rng.shuffle(devices.map((d) => d.index)).slice(
        0,
        1 + rng.int(Math.min(4, devices.length)),
      );
      episode = {
        kind,
        targets,
        endTime: now + rng.logNormal(kind === "DoS" || kind === "Scanning" ? 60 : 200, 0.5),
        low: rng.chance(0.45),
        share: rng.uniform(0.5, 0.95),
        nextAttackerTime: now,
        mode: rng.int(4),
      };
    }
    const attacker = {
      address: ATTACKER_ADDRESS,
      mac: ATTACKER_MACS[rng.int(ATTACKER_MACS.length)],
    };
    if (attackerTime <= device.nextTime && episode) {
      const target = devices[episode.targets[0]];
      const f = episode.kind === "DoS"
        ? dosFlow(rng, target, episode.low)
        : scanFlow(rng, target, episode.low);
      f.sport = attackerSport = attackerSport >= 65535 ? 40000 : attackerSport + 1;
      f.vitals = dropouts(rng, f.vitals);
      const ecg = Math.round(target.patient.state.hr + rng.normal(0, 1.5));
      const gapS = episode.kind === "DoS"
        ? (episode.low ? rng.exponential(1.2) : rng.exponential(0.25))
        : (episode.low ? rng.exponential(2) : rng.exponential(0.3));
      episode.nextAttackerTime = now + gapS;
      yield emit(f, episode.kind, attacker, ecg);
      produced++;
      continue;
    }
    const d = device;
    d.nextTime = now + d.type.periodS * rng.logNormal(1, 0.05);
    const base = normalFlow(rng, d);
    d.sport = d.sport >= 65535 ? 49152 : d.sport + 1;
    base.sport = d.sport;
    const trueHr = Math.round(d.patient.state.hr + rng.normal(0, 1.5));
    let flow = base;
    let cls: AttackClass = "normal";
    const hit = episode && episode.targets.includes(d.index) && rng.chance(episode.share);
    if (hit && episode!.kind === "Spoofing") {
      flow = relay(rng, base, 1);
      cls = "Spoofing";
    } else if (hit && episode!.kind === "Data Alteration") {
      flow = relay(rng, base, 0.35);
      flow.vitals = alterVitals(rng, base.vitals, episode!.mode);
      cls = "Data Alteration";
    } else if (hit && episode!.kind === "Replay") {
      const replayed = replayFlow(rng, d);
      if (replayed) {
        flow = { ...replayed, sport: base.sport };
        cls = "Replay";
      }
    }
    if (cls === "normal") {
      d.history.push(base);
      if (d.history.length > HISTORY_FLOWS) d.history.shift();
    }
    flow = { ...flow, vitals: dropouts(rng, flow.vitals) };
    // A replay carries the old capture's ECG reading too: stale, but self-consistent.
    const ecg = cls === "Replay" && flow.vitals.hr > 0
      ? flow.vitals.hr + Math.round(rng.normal(0, 1.5))
      : trueHr;
    // MITM-type attacks keep the victim's address but arrive from the attacker's MAC.
    const src = cls === "normal" ? d : { address: d.address, mac: attacker.mac };
    yield emit(flow, cls, src, ecg);
    produced++;
  }
}

/** The synthetic set as a record source, for prepareDataset without touching the disk. */
export function syntheticRecordSource(options: SyntheticOptions): RecordSource {
  return {
    format: "wustl-ehms",
    formatReason: `synthetic IoMT data (rows ${options.rows}, seed ${options.seed})`,
    files: [`<synthetic seed=${options.seed}>`],
    header: [...SYNTHETIC_HEADER],
    declaredTypes: new Map(),
    async *batches(): AsyncIterable<RecordBatch> {
      let records: RawRecord[] = [];
      let line = 2;
      for (const fields of generateSyntheticRows(options)) {
        records.push({ fields, line: line++ });
        if (records.length === 4096) {
          yield { file: `<synthetic seed=${options.seed}>`, records };
          records = [];
        }
      }
      if (records.length > 0) yield { file: `<synthetic seed=${options.seed}>`, records };
    },
  };
}

/** Writes the synthetic set as CSV; atomically (temp file + rename), so no partial file remains. */
export function writeSyntheticCsv(
  path: string,
  options: SyntheticOptions,
): { rows: number; bytes: number } {
  const temp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(temp, "wx");
  let bytes = 0;
  let rows = 0;
  try {
    const encoder = new TextEncoder();
    let chunk = SYNTHETIC_HEADER.map(csvField).join(",") + "\n";
    const flush = () => {
      const data = encoder.encode(chunk);
      let offset = 0;
      while (offset < data.length) offset += writeSync(fd, data, offset, data.length - offset);
      bytes += data.length;
      chunk = "";
    };
    for (const fields of generateSyntheticRows(options)) {
      chunk += fields.map(csvField).join(",") + "\n";
      rows++;
      if (chunk.length >= 1 << 16) flush();
    }
    flush();
    closeSync(fd);
    renameSync(temp, path);
  } catch (error) {
    try {
      closeSync(fd);
    } catch { /* already closed */ }
    try {
      unlinkSync(temp);
    } catch { /* never created */ }
    throw error;
  }
  return { rows, bytes };
}

function csvField(value: string): string {
  return /[",\n\r]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}
