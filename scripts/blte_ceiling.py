"""What the BLTE transaction features can reach, argus's model beside a random forest.

Reads the scores `scripts/blte_ceiling.sh` wrote (`argus models score` of refit models, one per
seed) and fits scikit-learn forests on the same ordered split (70 % train, 15 % validation,
latest 15 % test; the forest is refit on train + validation with the threshold validation chose,
as `--refit` does). Prints, per model: ROC-AUC, PR-AUC, F1 at the validation-chosen threshold,
the best F1 at any threshold (hindsight: the ceiling a threshold rule could reach), and the best
precision at fixed recalls. Then two facts about the data that bound every model:
- the share of test scams that are plain transfers (21,000 gas used) like almost every normal row;
- the days whose rows are all scams (the set was assembled by day: time features would learn the
  sampling, not the fraud, which is why argus drops block_timestamp and block_number).
"""

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import average_precision_score, f1_score, precision_recall_curve, roc_auc_score

FEATURES = ["gas", "receipt_gas_used", "gas_price", "value"]
RECALLS = (0.45, 0.5, 0.55, 0.6)


def best_f1(y, p):
    pr, rc, th = precision_recall_curve(y, p)
    f = 2 * pr * rc / np.maximum(pr + rc, 1e-12)
    i = int(np.nanargmax(f[:-1]))
    return float(th[i]), float(f[i]), pr, rc


def row(name, y, p, thr):
    _, fmax, pr, rc = best_f1(y, p)
    prec = " ".join(f"{pr[rc >= r].max():.3f}" for r in RECALLS)
    print(
        f"{name:<14} auc {roc_auc_score(y, p):.3f}  pr_auc {average_precision_score(y, p):.3f}  "
        f"f1 {f1_score(y, p >= thr):.3f}  best f1 (hindsight) {fmax:.3f}  precision at recall "
        f"{'/'.join(str(r) for r in RECALLS)}: {prec}"
    )
    return f1_score(y, p >= thr), fmax


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--seeds", nargs="+", type=int, required=True)
    a = ap.parse_args()
    d = pd.read_csv(a.data)
    y = d["class"].to_numpy()
    n = len(d)
    n_test = int(n * 0.15)
    n_val = n_test
    tr, va = n - n_val - n_test, n - n_test
    yt = y[va:]
    print(f"{n} rows: train {tr}, validation {n_val} ({y[tr:va].mean():.1%} scams), "
          f"test {n_test} ({yt.mean():.1%} scams)")

    ours = []
    for s in a.seeds:
        card = (Path(a.work) / f"seed{s}" / "model.toml").read_text()
        thr = float(re.search(r"^threshold = (\S+)", card, re.M).group(1))
        score = pd.read_csv(Path(a.work) / f"seed{s}.csv")["score"].to_numpy()[va:]
        ours.append(row(f"argus seed {s}", yt, score, thr))

    X = d[FEATURES].to_numpy(dtype=float)
    forest = []
    for s in a.seeds:
        first = RandomForestClassifier(200, n_jobs=-1, random_state=s).fit(X[:tr], y[:tr])
        thr, _, _, _ = best_f1(y[tr:va], first.predict_proba(X[tr:va])[:, 1])
        refit = RandomForestClassifier(200, n_jobs=-1, random_state=s).fit(X[:va], y[:va])
        forest.append(row(f"forest seed {s}", yt, refit.predict_proba(X[va:])[:, 1], thr))

    for name, r in (("argus", ours), ("forest", forest)):
        r = np.array(r)
        print(f"{name:<7} f1 {r[:, 0].min():.3f}-{r[:, 0].max():.3f} (mean {r[:, 0].mean():.3f}); "
              f"best f1 at any threshold {r[:, 1].min():.3f}-{r[:, 1].max():.3f}")

    test = d.iloc[va:]
    scams = test[test["class"] == 1]
    plain = (scams["receipt_gas_used"] == 21000).mean()
    normal_plain = (test[test["class"] == 0]["receipt_gas_used"] == 21000).mean()
    print(f"test scams that are plain transfers (21,000 gas used): {plain:.1%} "
          f"(normal test rows: {normal_plain:.1%}); the scam address that marks them is not a column")

    day = pd.to_datetime(d["block_timestamp"], unit="s").dt.date
    per_day = d.groupby(day)["class"].agg(["mean", "size"])
    only = per_day[per_day["mean"] == 1.0]
    print(f"days whose every row is a scam: {len(only)} of {len(per_day)} ({int(only['size'].sum())} rows); "
          f"days with no scam: {int((per_day['mean'] == 0).sum())}")


if __name__ == "__main__":
    main()
