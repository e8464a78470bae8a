"""The GPU benchmark script runs (dry, on the CPU) so that it cannot rot."""

from __future__ import annotations

import json
import os
import subprocess


def test_gpu_benchmark_dry_run():
    env = dict(os.environ, PY=os.environ.get("PYTHON", "python"))
    import sys

    env["PY"] = sys.executable
    out = subprocess.run(
        ["bash", "benchmarks/gpu.sh", "--seconds", "0.3"], capture_output=True, text=True, timeout=300, env=env
    )
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    names = [r.get("name") for r in rows]
    assert {"paper_style", "ours", "packed_1", "packed_8"} <= set(names)
    assert {"ensemble.mini.1", "ensemble.mini.2", "packed.paper.2", "ensemble.paper.2"} <= set(names)
    two = next(r for r in rows if r.get("name") == "ensemble.mini.2")
    assert two["ratio"] > 0 and two["baseline"] > 0
    assert all(r["value"] > 0 for r in rows if "value" in r)


def test_packing_benchmark_times_each_process():
    """``bench_packing``'s helper starts the processes together and returns one positive
    time per step for each of them."""
    import sys

    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    from benchmarks.run import _packed_seconds

    seconds = _packed_seconds("mini_block", False, 2, 1, 2)
    assert len(seconds) == 2
    assert all(0 < s < 60 for s in seconds)
