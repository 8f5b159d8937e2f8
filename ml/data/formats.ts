// The flow-log formats we read, how each is recognised from its header, which of its columns
// are identity rather than behaviour (dropped by default), where the label lives, which columns
// are categorical and which one is time.

export const FORMAT_NAMES = [
  "wustl-ehms",
  "cicflowmeter",
  "ciciomt2024",
  "zeek-conn",
  "ton-iot",
  "generic",
] as const;
export type FormatName = typeof FORMAT_NAMES[number];
export type FormatChoice = FormatName | "auto";

export interface FormatSpec {
  name: FormatName;
  description: string;
  /** Label columns in order of preference: the first non-missing value is the class. */
  labelColumns: readonly string[];
  /** Columns that are labels or label-derived and so never features (e.g. WUSTL's 0/1 Label). */
  labelDerived: readonly string[];
  /** Identity columns dropped by default, with the reason printed by `data inspect`. */
  identity: readonly { column: string; reason: string }[];
  categorical: readonly string[];
  timeColumn?: string;
}

const ADDRESS = "address (identifies a host, not its behaviour)";
const MAC = "MAC address (identifies a device; in WUSTL-EHMS it alone gives the label away)";
const SPORT = "source port (ephemeral, identity not behaviour)";
const FLOW_ID = "flow id (identifier)";
const UID = "uid (identifier)";
const TIME = "timestamp (time of capture, not behaviour; used only for time-ordered splits)";
const COUNTER = "record counter (position in the capture, not behaviour)";

export const FORMATS: Record<FormatName, FormatSpec> = {
  "wustl-ehms": {
    name: "wustl-ehms",
    description: "WUSTL-EHMS-2020 Argus flows + biometrics (also the synthetic IoMT set)",
    labelColumns: ["Attack Category", "Label"],
    labelDerived: ["Label", "Attack Category"],
    identity: [
      { column: "SrcAddr", reason: ADDRESS },
      { column: "DstAddr", reason: ADDRESS },
      { column: "Sport", reason: SPORT },
      { column: "SrcMac", reason: MAC },
      { column: "DstMac", reason: MAC },
      { column: "Packet_num", reason: COUNTER },
      { column: "StartTime", reason: TIME },
    ],
    categorical: ["Dir", "Flgs", "Dport"],
    timeColumn: "StartTime",
  },
  cicflowmeter: {
    name: "cicflowmeter",
    description: "CICFlowMeter CSV (CIC-IDS2017/2018 style, ~80 columns, Label)",
    labelColumns: ["Label"],
    labelDerived: ["Label"],
    identity: [
      { column: "Flow ID", reason: FLOW_ID },
      { column: "Src IP", reason: ADDRESS },
      { column: "Source IP", reason: ADDRESS },
      { column: "Dst IP", reason: ADDRESS },
      { column: "Destination IP", reason: ADDRESS },
      { column: "Src Port", reason: SPORT },
      { column: "Source Port", reason: SPORT },
      { column: "Timestamp", reason: TIME },
    ],
    categorical: ["Protocol", "Dst Port", "Destination Port"],
    timeColumn: "Timestamp",
  },
  ciciomt2024: {
    name: "ciciomt2024",
    description: "CICIoMT2024 feature CSVs (class from the file name)",
    labelColumns: ["file_class", "label"],
    labelDerived: ["file_class", "label"],
    identity: [],
    categorical: ["Protocol Type"],
  },
  "zeek-conn": {
    name: "zeek-conn",
    description: "Zeek conn.log (TSV with #fields/#types headers, or JSON lines)",
    labelColumns: ["detailed-label", "label"],
    labelDerived: ["detailed-label", "label"],
    identity: [
      { column: "ts", reason: TIME },
      { column: "uid", reason: UID },
      { column: "id.orig_h", reason: ADDRESS },
      { column: "id.resp_h", reason: ADDRESS },
      { column: "id.orig_p", reason: SPORT },
      { column: "tunnel_parents", reason: "uids of parent connections (identifier)" },
    ],
    categorical: [
      "proto",
      "service",
      "conn_state",
      "history",
      "local_orig",
      "local_resp",
      "id.resp_p",
    ],
    timeColumn: "ts",
  },
  "ton-iot": {
    name: "ton-iot",
    description: "ToN_IoT network CSV (ts, src_ip, ..., label, type)",
    labelColumns: ["type", "label"],
    labelDerived: ["type", "label"],
    identity: [
      { column: "ts", reason: TIME },
      { column: "src_ip", reason: ADDRESS },
      { column: "dst_ip", reason: ADDRESS },
      { column: "src_port", reason: SPORT },
    ],
    categorical: [
      "proto",
      "service",
      "conn_state",
      "dst_port",
      "dns_qclass",
      "dns_qtype",
      "dns_rcode",
      "http_status_code",
    ],
    timeColumn: "ts",
  },
  generic: {
    name: "generic",
    description: "any CSV with a header; the label column is given with --label",
    labelColumns: [],
    labelDerived: [],
    identity: [],
    categorical: [],
  },
};

/** Name patterns for identity columns in any format (generic CSVs included). */
const IDENTITY_PATTERNS: readonly { pattern: RegExp; reason: string }[] = [
  {
    pattern: /^(src|dst|source|destination|orig|resp|saddr|daddr)?_?(ip|addr|address|host)$/,
    reason: ADDRESS,
  },
  { pattern: /^(src|dst|source|destination|s|d)?_?(ip|addr)(_?(src|dst))?$/, reason: ADDRESS },
  { pattern: /mac$|^mac|_mac_|macaddr/, reason: MAC },
  { pattern: /^(src|source|s)_?port$|^sport$/, reason: SPORT },
  { pattern: /^flow_?id$/, reason: FLOW_ID },
  { pattern: /^(uid|uuid|conn_?uid)$/, reason: UID },
  {
    pattern: /^(ts|timestamp|time|stime|ltime|start_?time|end_?time|date|datetime|frame_?time)$/,
    reason: TIME,
  },
  { pattern: /^(packet_?num|record_?id|row_?id|index|id)$/, reason: COUNTER },
];

function simplify(name: string): string {
  return name.trim().toLowerCase().replace(/[\s.\-]+/g, "_");
}

/** The reason a column is identity (dropped by default), or undefined. */
export function identityReason(spec: FormatSpec, column: string): string | undefined {
  const listed = spec.identity.find((rule) => rule.column === column);
  if (listed) return listed.reason;
  const simple = simplify(column);
  for (const rule of IDENTITY_PATTERNS) if (rule.pattern.test(simple)) return rule.reason;
  return undefined;
}

/** Recognises a CSV header (names already trimmed); null when nothing fits. */
export function detectCsvFormat(
  header: readonly string[],
): { format: FormatName; reason: string } | null {
  const has = (name: string) => header.includes(name);
  if (
    has("SrcMac") && has("SrcAddr") && has("SIntPkt") && (has("Attack Category") || has("Label"))
  ) {
    return {
      format: "wustl-ehms",
      reason: "Argus columns SrcAddr/SrcMac/SIntPkt with Attack Category/Label",
    };
  }
  if (has("Protocol Type") && (has("Magnitue") || has("IAT")) && has("Header_Length")) {
    return { format: "ciciomt2024", reason: "CICIoMT2024 columns Header_Length/Protocol Type/IAT" };
  }
  if (has("Flow Duration") && has("Label")) {
    return { format: "cicflowmeter", reason: "CICFlowMeter columns Flow Duration/Label" };
  }
  if (has("src_ip") && has("dst_ip") && has("conn_state") && (has("label") || has("type"))) {
    return { format: "ton-iot", reason: "ToN_IoT columns src_ip/dst_ip/conn_state/label/type" };
  }
  if (has("uid") && has("id.orig_h") && has("conn_state")) {
    return { format: "zeek-conn", reason: "Zeek conn.log columns uid/id.orig_h/conn_state" };
  }
  return null;
}

/** CICIoMT2024 file name -> class, e.g. TCP_IP-DDoS-UDP1_train.pcap.csv -> DDoS. */
export function ciciomtClassFromFileName(fileName: string): string | null {
  const base = fileName.replace(/^.*[\\/]/, "").replace(/(_(train|test))?(\.pcap)?\.csv$/i, "");
  const name = base.replace(/\d+$/, "");
  const rules: [RegExp, string][] = [
    [/^benign/i, "Benign"],
    [/^(tcp_ip-)?ddos/i, "DDoS"],
    [/^(tcp_ip-)?dos/i, "DoS"],
    [/^mqtt/i, "MQTT"],
    [/^recon/i, "Recon"],
    [/spoof/i, "Spoofing"],
  ];
  for (const [pattern, label] of rules) if (pattern.test(name)) return label;
  return null;
}

/** Class names treated as "normal" (index 0) unless --normal-label says otherwise. */
export const NORMAL_LABELS: readonly string[] = ["normal", "benign", "0", "background", "false"];

export function isNormalLabel(value: string, normalLabel?: string): boolean {
  if (normalLabel !== undefined) return value === normalLabel;
  return NORMAL_LABELS.includes(value.trim().toLowerCase());
}
