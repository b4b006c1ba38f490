"""The README's tour as a script: a workload, a module of your own, a space, samples, a search, an export.

Run: .venv/bin/python examples/tour.py [--out DIR] [--trials N]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

import msexplore as mx


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", default=None, help="folder for the run and the exported kernel (default: a temp dir)")
    parser.add_argument("--trials", type=int, default=32)
    args = parser.parse_args(argv)
    out = args.out or tempfile.mkdtemp(prefix="msexplore-tour-")
    os.makedirs(out, exist_ok=True)

    wl = mx.workload("GMM", n=256, m=256, k=256)
    print(wl)
    print("target:", mx.host_target())

    @mx.module
    def tile_and_vectorize(sch, block):
        """Two-level tiling of the matmul's j loop, its inner part vectorized."""
        if sch.get(block).name_hint != "Z":
            return [sch]
        *_, i, j, k = sch.get_loops(block)
        j_outer, j_inner = sch.split(j, sch.sample_perfect_tile(j, n=2, max_innermost_factor=64))
        sch.reorder(i, j_outer, k, j_inner)
        sch.vectorize(j_inner)
        return [sch]

    space = mx.Space(wl, modules=["auto_inline", tile_and_vectorize, "parallelize_vectorize_unroll"])
    print(space)
    print(space.summary()[["name", "module", "kind", "extent", "domain_size"]].to_string(index=False))

    t = time.perf_counter()
    samples = space.sample(200, seed=0)
    print(f"{samples} in {time.perf_counter() - t:.2f} s")
    print(samples.df.drop(columns=["error", "seed"]).head(5).to_string(index=False))
    print(mx.diff(samples[3], samples[5]).decisions.to_string(index=False))
    edited = samples[3].with_decisions({"Z.tile_j": [4, 64]})
    print("edited:", dict(edited.decisions))
    try:
        samples[3].with_decisions({"Z.tile_j": [3, 85]})
    except ValueError as err:
        print("illegal edit:", str(err)[:120], "...")
    path = os.path.join(out, "samples.jsonl")
    samples.save(path)
    assert mx.SampleSet.load(path, space).df.equals(samples.df)

    run = mx.search(mx.Space(wl), trials=args.trials, batch_size=16, work_dir=os.path.join(out, "run"))
    run.subscribe(lambda batch: print(" ", run.progress))
    run.wait()
    print(run.best)
    bundle = run.best.export(os.path.join(out, "kernel"), overwrite=True)
    print(bundle)

    kernel = mx.load_kernel(os.path.join(out, "kernel"))
    a, b, _ = wl.make_inputs(seed=1)
    (c,) = [kernel(a, b)]
    np.testing.assert_allclose(c, a @ b, rtol=1e-4, atol=1e-3)
    print("kernel matches numpy; benchmark:", kernel.benchmark())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
