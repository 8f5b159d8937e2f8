# Logistic-regression reference on the split written by bench/export_split.ts (Debian
# python3-sklearn): threshold chosen on the validation split, metrics on the test split.
import sys
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, f1_score, roc_auc_score

d = sys.argv[1] if len(sys.argv) > 1 else "split-csv"
load = lambda name: np.loadtxt(f"{d}/{name}.csv", delimiter=",")
train, validation, test = load("train"), load("validation"), load("test")
model = LogisticRegression(max_iter=2000).fit(train[:, :-1], train[:, -1])
pv = model.predict_proba(validation[:, :-1])[:, 1]
threshold = max(np.linspace(0.05, 0.95, 91), key=lambda t: f1_score(validation[:, -1], pv >= t))
pt = model.predict_proba(test[:, :-1])[:, 1]
yt = test[:, -1]
print(f"logistic regression, threshold {threshold:.2f} (validation): accuracy {accuracy_score(yt, pt >= threshold):.4f} "
      f"F1 {f1_score(yt, pt >= threshold):.4f} ROC-AUC {roc_auc_score(yt, pt):.4f}")
