"""Sealed layers: reading specs and results imports neither torch nor Ray, and importing
the engine sets no process state."""

from __future__ import annotations

import subprocess
import sys


def test_specs_errors_and_results_load_without_torch_or_ray():
    code = (
        "import os, sys\n"
        "before = dict(os.environ)\n"
        "import additive.errors, additive.spec, additive.restarts, sweeps.spec, sweeps.results, sweeps.engine\n"
        "import analysis.load, analysis.tables, analysis.restarts\n"
        "from additive import AdxError, TrialSpec\n"
        "heavy = sorted(m for m in ('torch', 'ray', 'ray.tune', 'optuna') if m in sys.modules)\n"
        "changed = sorted(k for k in os.environ if os.environ.get(k) != before.get(k))\n"
        "print(heavy, changed)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[] []"
