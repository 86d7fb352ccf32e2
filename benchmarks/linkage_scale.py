"""Scale of exact single-linkage clustering: capcse vs DBSCAN(min_samples=1, metric='cosine').

Data: N random 256-d unit vectors with planted clusters. Cluster centres are uniform on the sphere;
cluster sizes are geometric with mean ``--mean-size`` (so some clusters are singletons); a record is
its centre plus Gaussian noise of norm ``--noise``, re-normalised (within-cluster cosine distance about
``noise^2 / (1 + noise^2)``). Records are shuffled. Clustering threshold ``--threshold`` (cosine
distance, inclusive).

Each case runs in its own subprocess, so its wall time and peak resident memory (``ru_maxrss`` of that
process, which includes the input matrix) are its own. DBSCAN (scikit-learn, brute-force cosine, the
method of the original CLIPPINGS code) runs where it fits the time budget; where both run, the
partitions must be identical. Anchor: DBSCAN in the same run.

    python benchmarks/linkage_scale.py            # N = 10k, 100k, 1M   (ratio = seconds at 1M / 600)
    python benchmarks/linkage_scale.py --quick    # N = 10k, 100k       (ratio = seconds at 100k / 60;
                                                  #  DBSCAN at 10k only, to stay under 3 minutes)
    # the brute / certified crossover (docs/linkage.md): both exact methods at each N, same data
    python benchmarks/linkage_scale.py --crossover --sizes 2000 5000 10000 20000 --dbscan-max 0
    python benchmarks/linkage_scale.py --crossover --sizes 2000 5000 10000 --mean-size 1 --dbscan-max 0  # worst case:
                                                  #  all singletons, so step 1 leaves C = N components
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

DIM = 256


def make_data(n: int, mean_size: float, noise: float, seed: int):
    import numpy as np

    rng = np.random.default_rng(seed)
    sizes = rng.geometric(1.0 / mean_size, size=n)
    n_clusters = int(np.searchsorted(np.cumsum(sizes), n)) + 1
    labels = np.repeat(np.arange(n_clusters), sizes[:n_clusters])[:n]
    centres = rng.standard_normal((n_clusters, DIM), dtype=np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    X = centres[labels]
    del centres
    for s in range(0, n, 65536):  # in place, to keep the peak memory of the generator low
        X[s : s + 65536] += noise / np.sqrt(DIM) * rng.standard_normal((min(65536, n - s), DIM), dtype=np.float32)
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    perm = rng.permutation(n)
    return X[perm], labels[perm]


def run_case(args) -> None:
    """Child process: generate the data, cluster it, write labels, print one JSON line."""
    import resource

    import numpy as np

    X, planted = make_data(args.n, args.mean_size, args.noise, args.seed)
    import faiss  # noqa: F401  (imports are not part of the timed clustering)
    import sklearn.cluster  # noqa: F401
    import torch  # noqa: F401

    t0 = time.perf_counter()
    extra = {}
    if args.case == "capcse":
        from capcse.evaluation.linkage import single_linkage

        labels, info = single_linkage(X, args.threshold, method=args.method, n_threads=args.threads, return_info=True)
        extra = {
            "method": info.method,
            "step_seconds": {k: round(v, 2) for k, v in info.seconds.items()},
            "components_step1": info.n_components_step1,
            "flagged_component_pairs": info.n_flagged_component_pairs,
            "edges_step3": info.n_edges_step3,
        }
    else:
        from sklearn.cluster import DBSCAN

        from capcse.evaluation.linkage import canonical_labels

        labels = canonical_labels(DBSCAN(eps=args.threshold, min_samples=1, metric="cosine", n_jobs=args.threads).fit(X).labels_)
    seconds = time.perf_counter() - t0
    from sklearn.metrics import adjusted_rand_score

    np.save(args.out, labels)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30  # Linux: KiB
    print(json.dumps({"case": args.case, "n": args.n, "seconds": seconds, "peak_gib": peak, "clusters": int(labels.max()) + 1,
                      "ari_vs_planted": float(adjusted_rand_score(planted, labels)), **extra}))


def spawn(case: str, n: int, args, workdir: str, method: str | None = None):
    method = method or args.method
    out = os.path.join(workdir, f"{case}_{method}_{n}.npy")
    cmd = [sys.executable, __file__, "--child", case, "--n", str(n), "--out", out, "--threshold", str(args.threshold),
           "--mean-size", str(args.mean_size), "--noise", str(args.noise), "--seed", str(args.seed),
           "--threads", str(args.threads), "--method", method]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"case {case} N={n} failed")
    return json.loads(proc.stdout.strip().splitlines()[-1]), out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="N = 10k and 100k only; ratio = seconds at 100k / 60")
    p.add_argument("--sizes", type=int, nargs="*", help="override the list of N")
    p.add_argument("--dbscan-max", type=int, default=None,
                   help="largest N given to DBSCAN (its time is O(N^2 d)); default 100k, 10k with --quick")
    p.add_argument("--threshold", type=float, default=0.15)
    p.add_argument("--mean-size", type=float, default=8.0)
    p.add_argument("--noise", type=float, default=0.3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--method", default="auto", help="capcse single_linkage method (auto, brute, certified)")
    p.add_argument("--crossover", action="store_true", help="run capcse's brute and certified methods at every N "
                   "(and DBSCAN up to --dbscan-max) and print their times side by side")
    p.add_argument("--child", choices=["capcse", "dbscan"], help=argparse.SUPPRESS)
    p.add_argument("--n", type=int, help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        args.case = args.child
        run_case(args)
        return 0

    import numpy as np

    if args.crossover:
        return crossover(args)
    sizes = args.sizes or ([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    if args.dbscan_max is None:
        args.dbscan_max = 10_000 if args.quick else 100_000
    target_n = sizes[-1]
    budget = 60.0 if args.quick else 600.0
    load = os.getloadavg()
    print(f"# linkage_scale: d={DIM} threshold={args.threshold} mean_size={args.mean_size} noise={args.noise} "
          f"threads={args.threads} load_avg_at_start={load[0]:.2f}")
    print(f"{'N':>9} {'capcse s':>9} {'capcse GiB':>10} {'DBSCAN s':>9} {'DBSCAN GiB':>10} {'identical':>9} {'clusters':>9} {'ARI planted':>11}")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            ours, ours_path = spawn("capcse", n, args, tmp)
            row = {"capcse": ours}
            same = "-"
            if n <= args.dbscan_max:
                ref, ref_path = spawn("dbscan", n, args, tmp)
                row["dbscan"] = ref
                same = str(bool(np.array_equal(np.load(ours_path), np.load(ref_path))))
                row["identical"] = same == "True"
            results[n] = row
            db = row.get("dbscan")
            print(f"{n:>9} {ours['seconds']:>9.1f} {ours['peak_gib']:>10.2f} {db['seconds'] if db else float('nan'):>9.1f} "
                  f"{db['peak_gib'] if db else float('nan'):>10.2f} {same:>9} {ours['clusters']:>9} {ours['ari_vs_planted']:>11.4f}")
            print("#   capcse steps:", json.dumps({k: ours.get(k) for k in ("method", "step_seconds", "components_step1", "flagged_component_pairs", "edges_step3")}))
    if any(r.get("identical") is False for r in results.values()):
        print("# ERROR: partitions differ from DBSCAN")
    top = results[target_n]["capcse"]
    speedups = [r["dbscan"]["seconds"] / r["capcse"]["seconds"] for r in results.values() if "dbscan" in r]
    print(f"RESULT linkage_scale ratio={top['seconds'] / budget:.3f} target=1 peak_gib={top['peak_gib']:.2f} "
          f"n={target_n} seconds={top['seconds']:.1f} speedup_vs_dbscan_at_{max(n for n in results if 'dbscan' in results[n])}={speedups[-1]:.1f} "
          f"identical={all(r.get('identical', True) for r in results.values())} load_avg_at_start={load[0]:.2f}")
    return 0


def crossover(args) -> int:
    """Brute force against the certified method at each N (same data, separate processes)."""
    import numpy as np

    sizes = args.sizes or [2000, 5000, 10000, 20000]
    dbscan_max = 0 if args.dbscan_max is None else args.dbscan_max
    load = os.getloadavg()
    print(f"# linkage_scale --crossover: d={DIM} threshold={args.threshold} mean_size={args.mean_size} noise={args.noise} "
          f"threads={args.threads} load_avg_at_start={load[0]:.2f}")
    print(f"{'N':>7} {'brute s':>8} {'certified s':>11} {'DBSCAN s':>9} {'identical':>9} {'clusters':>8} {'C step 1':>8} "
          f"{'flagged pairs':>13} {'certified steps (s)':>30}")
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            brute, bpath = spawn("capcse", n, args, tmp, "brute")
            cert, cpath = spawn("capcse", n, args, tmp, "certified")
            same = np.array_equal(np.load(bpath), np.load(cpath))
            db = "-"
            if n <= dbscan_max:
                ref, rpath = spawn("dbscan", n, args, tmp)
                same = same and np.array_equal(np.load(bpath), np.load(rpath))
                db = f"{ref['seconds']:.1f}"
            steps = " ".join(f"{k.split('_')[0]}={v}" for k, v in cert["step_seconds"].items() if k != "total")
            print(f"{n:>7} {brute['seconds']:>8.2f} {cert['seconds']:>11.2f} {db:>9} {str(same):>9} {brute['clusters']:>8} "
                  f"{cert['components_step1']:>8} {cert['flagged_component_pairs']:>13} {steps:>30}")
    print(f"# load_avg_at_end={os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
