#!/usr/bin/python3
"""PyTorch reference for bench/train.ts: the same split CNN-BiLSTM and the same split step
(device forward -> detached activations -> edge forward/backward -> activation gradient ->
device backward), timed the same way.

One-shot (default): every batch of --batches, --runs timed runs of training then of inference;
prints one JSON line with the medians.

--serve: builds the model for --threads, prints one JSON line {"ready": true, "runtime", "threads"},
then reads commands from stdin, one per line, and answers each with one JSON line (flushed):
  train B S | infer B S   one timed run (batch B, at least S seconds, at least 2 calls) ->
                          {"kind", "batch", "wall", "cpu", "calls", "seconds"} (samples per wall
                          second and per CPU second of this process)
  quit                    -> {"quit": true, "peakRssMB"} and exit (end of stdin: exit silently)
A bad or failing command answers {"error", "command"} and the server keeps serving.
Both modes use the same model, step, warm-up (first use of a batch: 2 training steps before
training, 1 inference call before inference) and timing (timed_run below).

Run with Debian's python (apt-get install python3-torch): /usr/bin/python3 bench/torch_reference.py
"""
import argparse
import json
import resource
import sys
import time

import torch
import torch.nn as nn

p = argparse.ArgumentParser()
p.add_argument("--features", type=int, default=44)
p.add_argument("--filters", type=int, default=32)
p.add_argument("--kernel", type=int, default=3)
p.add_argument("--units", type=int, default=64)
p.add_argument("--dense", type=int, default=32)
p.add_argument("--unidirectional", action="store_true")
p.add_argument("--threads", type=int, default=1)
p.add_argument("--batches", default="64,256,1024")
p.add_argument("--min-seconds", type=float, default=1.0)
p.add_argument("--runs", type=int, default=3)
p.add_argument("--serve", action="store_true", help="answer timed-run commands from stdin (see above)")
p.add_argument("--random-forest", metavar="DIR", help="instead: fit sklearn's RandomForest on DIR/{train,validation,test}.{x,y}")
p.add_argument("--columns", type=int, default=0)
p.add_argument("--seed", type=int, default=0)
a = p.parse_args()

if a.random_forest:
    # Reference for the quality figure: scikit-learn random forest, trained centrally on the same
    # training rows (float32 row-major .x, int32 .y written by bench/train.ts).
    import os
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import confusion_matrix, f1_score, precision_score, recall_score, roc_auc_score

    def load(name):
        x = np.fromfile(os.path.join(a.random_forest, name + ".x"), dtype="<f4").reshape(-1, a.columns)
        return x, np.fromfile(os.path.join(a.random_forest, name + ".y"), dtype="<i4")

    (xt, yt), (xv, yv), (xs, ys) = load("train"), load("validation"), load("test")
    rf = RandomForestClassifier(n_estimators=100, random_state=a.seed, n_jobs=1).fit(xt, yt)

    def report(name, threshold):
        score = rf.predict_proba(xs)[:, 1]
        pred = (score >= threshold).astype(int)
        tn, fp, fn, tp = confusion_matrix(ys, pred, labels=[0, 1]).ravel()
        return dict(name=name, accuracy=float((tp + tn) / len(ys)), precision=float(precision_score(ys, pred, zero_division=0)),
                    recall=float(recall_score(ys, pred, zero_division=0)), f1=float(f1_score(ys, pred, zero_division=0)),
                    fpr=float(fp / max(fp + tn, 1)), auc=float(roc_auc_score(ys, score)))

    # Threshold chosen on validation by F1, as for the network; and the plain 0.5.
    sv = rf.predict_proba(xv)[:, 1]
    best = max(sorted(set(sv)), key=lambda t: f1_score(yv, (sv >= t).astype(int), zero_division=0))
    print(json.dumps([report("100 trees, threshold 0.5", 0.5), report(f"100 trees, threshold {best:.3f} from validation", float(best))]))
    raise SystemExit(0)
torch.set_num_threads(a.threads)
torch.manual_seed(0)
bidirectional = not a.unidirectional


class Device(nn.Module):
    def __init__(s):
        super().__init__()
        s.conv = nn.Conv1d(1, a.filters, a.kernel, padding=a.kernel // 2)
        s.pool = nn.MaxPool1d(2)

    def forward(s, x):  # x [B, F] -> [B, F//2, filters]
        return s.pool(torch.relu(s.conv(x.unsqueeze(1)))).transpose(1, 2)


class Edge(nn.Module):
    def __init__(s):
        super().__init__()
        s.lstm = nn.LSTM(a.filters, a.units, batch_first=True, bidirectional=bidirectional)
        out = a.units * (2 if bidirectional else 1)
        s.d1 = nn.Linear(out, a.dense)
        s.d2 = nn.Linear(a.dense, 1)

    def forward(s, z):
        _, (h, _) = s.lstm(z)  # h [directions, B, units]
        h = torch.cat([h[0], h[1]], 1) if bidirectional else h[0]
        return s.d2(torch.relu(s.d1(h)))


dev, edge = Device(), Edge()
dopt = torch.optim.Adam(dev.parameters(), 1e-3)
eopt = torch.optim.Adam(edge.parameters(), 1e-3)
lossf = nn.BCEWithLogitsLoss()


def step(x, y):
    s = dev(x)
    sent = s.detach().requires_grad_()  # smashed activations "sent" to the edge
    loss = lossf(edge(sent), y)
    eopt.zero_grad()
    loss.backward()
    eopt.step()
    dopt.zero_grad()
    s.backward(sent.grad)  # activation gradient "sent back"
    dopt.step()
    return loss.item()


def infer(x):
    with torch.no_grad():
        return torch.sigmoid(edge(dev(x))).numpy()


def rate(fn, batch, min_seconds):
    """(samples per wall second, samples per CPU second of this process: all its threads)."""
    n, t0, c0 = 0, time.perf_counter(), time.process_time()
    while True:
        fn()
        n += 1
        el = time.perf_counter() - t0
        if n >= 2 and el >= min_seconds:
            return n * batch / el, n * batch / max(time.process_time() - c0, 1e-9), n, el


inputs = {}  # batch -> (x, y)
warmed = set()  # (kind, batch) already warmed up


def timed_run(kind, B, min_seconds):
    """One timed run of "train" (split step) or "infer" at batch B: (wall rate, CPU rate, calls,
    seconds). The first run of a kind at a batch warms up first (2 steps / 1 inference call)."""
    if kind not in ("train", "infer"):
        raise ValueError(f"unknown kind {kind!r} (train or infer)")
    if B < 1 or not min_seconds >= 0:
        raise ValueError(f"batch {B} must be >= 1 and seconds {min_seconds} >= 0")
    if B not in inputs:
        g = torch.Generator().manual_seed(7)
        x = torch.randn(B, a.features, generator=g)
        inputs[B] = (x, (x[:, :5].sum(1, keepdim=True) > 0).float())
    x, y = inputs[B]
    fn = (lambda: step(x, y)) if kind == "train" else (lambda: infer(x))
    if (kind, B) not in warmed:
        for _ in range(2 if kind == "train" else 1):
            fn()
        warmed.add((kind, B))
    return rate(fn, B, min_seconds)


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def serve():
    reply(dict(ready=True, runtime="torch " + torch.__version__, threads=torch.get_num_threads()))
    while True:
        line = sys.stdin.readline()
        if not line:
            return  # stdin closed: the caller is gone
        parts = line.split()
        if not parts:
            continue
        try:
            if parts == ["quit"]:
                reply(dict(quit=True, peakRssMB=peak_rss_mb()))
                return
            if len(parts) != 3 or parts[0] not in ("train", "infer"):
                raise ValueError("expected 'train B S', 'infer B S' or 'quit'")
            wall, cpu, n, el = timed_run(parts[0], int(parts[1]), float(parts[2]))
            reply(dict(kind=parts[0], batch=int(parts[1]), wall=wall, cpu=cpu, calls=n, seconds=el))
        except Exception as e:  # answer, keep serving: the caller decides what an error means
            reply(dict(error=f"{type(e).__name__}: {e}", command=line.strip()))


def med(v):
    return sorted(v)[len(v) // 2]


if a.serve:
    serve()
    raise SystemExit(0)

res = []
for B in [int(b) for b in a.batches.split(",")]:
    train = [timed_run("train", B, a.min_seconds) for _ in range(a.runs)]
    inf = [timed_run("infer", B, a.min_seconds) for _ in range(a.runs)]
    res.append(dict(batch=B, train=med([r[0] for r in train]), infer=med([r[0] for r in inf]),
                    trainRuns=sorted(r[0] for r in train), trainCpu=med([r[1] for r in train]),
                    inferCpu=med([r[1] for r in inf])))
print(json.dumps(dict(runtime="torch " + torch.__version__, threads=torch.get_num_threads(),
                      peakRssMB=peak_rss_mb(), results=res)))
