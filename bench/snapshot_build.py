"""Time and memory of building one corpus snapshot (``retrieval.snapshot.write``).

Opens the store in ``--data`` (a data directory holding ``chroma/`` and one
``<collection>.revision``, else name it with ``--collection``; e.g. a copy of
``bench/out/scale/100000``) and writes the snapshot of its current revision into a
temporary directory, in this (fresh) process. Reports the
wall time and the peak resident memory (``ru_maxrss``) of the whole build, and per step
(``write``'s ``phase`` calls): when it ended, VmRSS then and the highest VmRSS seen during it
(a thread reads ``/proc/self/status`` every 0.1 s).

``--keep DIR`` keeps the snapshot written (in DIR, which must not exist), and
``--compare A B`` checks that two snapshots hold the same corpus: every array, the text blob
and the sentence vectors byte for byte, and the BM25 index term by term (its term ids follow
a ``set``'s order, which changes with ``PYTHONHASHSEED``; with the same seed the files are
byte-identical too, and are reported so).

    python bench/snapshot_build.py --data /tmp/snap100k [--keep /tmp/snap-after]
    python bench/snapshot_build.py --compare /tmp/snap-before /tmp/snap-after
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def vm_rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


class Sampler(threading.Thread):
    """The highest VmRSS since the last :meth:`mark`, sampled every ``interval`` s."""

    def __init__(self, interval: float = 0.1) -> None:
        super().__init__(daemon=True)
        self.interval = interval
        self.peak = vm_rss_mb()
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def run(self) -> None:
        while not self._stop.wait(self.interval):
            rss = vm_rss_mb()
            with self._lock:
                self.peak = max(self.peak, rss)

    def mark(self) -> tuple[float, float]:
        """(VmRSS now, the peak since the last mark); the next peak starts from now."""
        rss = vm_rss_mb()
        with self._lock:
            peak, self.peak = max(self.peak, rss), rss
        return rss, peak

    def stop(self) -> None:
        self._stop.set()


def build(data: Path, keep: Path | None, collection: str | None = None) -> dict:
    from retrieval.snapshot import write
    from retrieval.store import Store, open_client, read_revision

    if collection is None:
        revisions = sorted(data.glob("*.revision"))
        if len(revisions) != 1:
            raise SystemExit(f"{data} holds {len(revisions)} collections: name one (--collection)")
        collection = revisions[0].stem
    revision = read_revision(data, collection)
    rss_start = vm_rss_mb()
    store = Store(open_client(data), collection)
    rss_open = vm_rss_mb()
    tmp = Path(tempfile.mkdtemp(prefix="snapshot-build-"))
    target = tmp / "snapshot"
    sampler = Sampler()
    sampler.start()
    phases: list[dict] = []
    t0 = last = time.perf_counter()
    sampler.mark()

    def phase(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        rss, peak = sampler.mark()
        phases.append(
            {"phase": name, "s": now - last, "at_s": now - t0, "rss_mb": rss, "peak_mb": peak}
        )
        last = now

    try:
        write(store, target, revision, str(data), phase=phase)
        total = time.perf_counter() - t0
        sampler.stop()
        manifest = json.loads((target / "manifest.json").read_text(encoding="utf-8"))
        if keep is not None:
            shutil.move(str(target), keep)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "collection": collection,
        "chunks": manifest["chunks"],
        "sentences": manifest["sentences"],
        "seconds": total,
        "ru_maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_start_mb": rss_start,
        "rss_store_open_mb": rss_open,
        "phases": phases,
    }


def report(result: dict) -> str:
    lines = [
        f"{result['collection']}: {result['chunks']} chunks, {result['sentences']} sentences",
        f"snapshot written in {result['seconds']:.1f} s; peak RSS (ru_maxrss) "
        f"{result['ru_maxrss_mb']:.0f} MB; RSS {result['rss_start_mb']:.0f} MB at start, "
        f"{result['rss_store_open_mb']:.0f} MB with the store open",
        f"{'step':<15}{'s':>8}{'ends at s':>11}{'RSS MB':>9}{'peak MB':>9}",
    ]
    for p in result["phases"]:
        lines.append(
            f"{p['phase']:<15}{p['s']:>8.1f}{p['at_s']:>11.1f}{p['rss_mb']:>9.0f}"
            f"{p['peak_mb']:>9.0f}"
        )
    return "\n".join(lines)


def compare(a: Path, b: Path) -> list[str]:
    """What differs between the snapshots ``a`` and ``b`` (empty: the same corpus)."""
    diffs: list[str] = []
    files_a = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    files_b = sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    if files_a != files_b:
        diffs.append(f"files differ: {sorted(set(files_a) ^ set(files_b))}")
    identical = [f for f in files_a if f in files_b and _same_bytes(a / f, b / f)]
    for name in files_a:
        if name in identical or name not in files_b or name.startswith("lexical/"):
            continue
        if name == "manifest.json":
            ma, mb = (json.loads((d / name).read_text(encoding="utf-8")) for d in (a, b))
            keys = sorted(k for k in {*ma, *mb} if k != "revision" and ma.get(k) != mb.get(k))
            if keys:
                diffs.append(f"manifest.json differs: {', '.join(keys)}")
        else:
            diffs.append(f"{name} differs")
    if not all(f in identical for f in files_a if f.startswith("lexical/")):
        diffs += _compare_lexical(a / "lexical", b / "lexical")
    print(f"byte-identical files: {len(identical)} of {len(files_a)}")
    return diffs


def _same_bytes(x: Path, y: Path) -> bool:
    if x.stat().st_size != y.stat().st_size:
        return False
    with open(x, "rb") as fx, open(y, "rb") as fy:
        while True:
            bx, by = fx.read(1 << 22), fy.read(1 << 22)
            if bx != by:
                return False
            if not bx:
                return True


def _compare_lexical(a: Path, b: Path) -> list[str]:
    """The BM25 indexes as term -> (documents, scores), whatever their term ids."""
    meta_a, meta_b = (json.loads((d / "lexical.json").read_text(encoding="utf-8")) for d in (a, b))
    if meta_a != meta_b:
        return ["lexical.json differs (size, empty or document frequencies)"]
    if not (a / "vocab.index.json").exists():
        return [] if not (b / "vocab.index.json").exists() else ["one BM25 index is empty"]
    params_a, params_b = (
        json.loads((d / "params.index.json").read_text(encoding="utf-8")) for d in (a, b)
    )
    if params_a != params_b:
        return ["params.index.json differs"]
    va, vb = (json.loads((d / "vocab.index.json").read_text(encoding="utf-8")) for d in (a, b))
    if set(va) != set(vb):
        return ["the BM25 vocabularies differ"]
    arrays = [
        {k: np.load(d / f"{k}.csc.index.npy") for k in ("data", "indices", "indptr")}
        for d in (a, b)
    ]
    for k in ("data", "indices", "indptr"):
        if arrays[0][k].dtype != arrays[1][k].dtype:
            return [f"BM25 {k} dtype {arrays[0][k].dtype} != {arrays[1][k].dtype}"]
    bad = 0
    for term, ia in va.items():
        ib = vb[term]
        cols = []
        for arr, i in ((arrays[0], ia), (arrays[1], ib)):
            # bm25s's empty term ("") is numbered past the matrix: no column, no scores.
            lo, hi = (
                (int(arr["indptr"][i]), int(arr["indptr"][i + 1]))
                if i + 1 < len(arr["indptr"])
                else (0, 0)
            )
            cols.append((arr["indices"][lo:hi], arr["data"][lo:hi]))
        if not (
            np.array_equal(cols[0][0], cols[1][0]) and cols[0][1].tobytes() == cols[1][1].tobytes()
        ):
            bad += 1
    return [f"{bad} BM25 terms score differently"] if bad else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, help="data directory of the store")
    parser.add_argument("--collection", help="the collection (default: the only one)")
    parser.add_argument("--keep", type=Path, help="keep the snapshot written here")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--compare", nargs=2, type=Path, metavar=("A", "B"))
    args = parser.parse_args()
    if args.compare:
        diffs = compare(*args.compare)
        print("\n".join(diffs) if diffs else "same corpus")
        raise SystemExit(1 if diffs else 0)
    if args.data is None:
        parser.error("--data or --compare")
    if args.keep is not None and args.keep.exists():
        parser.error(f"{args.keep} exists")
    result = build(args.data, args.keep, args.collection)
    print(report(result))
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
