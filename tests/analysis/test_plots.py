from __future__ import annotations

from analysis.plots import make_plots
from analysis.report import write_report


def test_dependence_support_and_curve_plots(known, tmp_path):
    for kind in ("dependence", "support", "curves"):
        paths = make_plots(["known"], str(known), kind, str(tmp_path / "plots"))
        assert [p.suffix for p in paths] == [".png", ".pdf"]
        assert all(p.stat().st_size > 5000 for p in paths)


def test_report_is_one_self_contained_file(known, tmp_path):
    path = write_report(["known"], str(known), str(tmp_path / "report.html"))
    page = path.read_text()
    assert page.count("data:image/png;base64,") >= 3
    assert "<th>LMS ID</th>" in page and ">additive<" in page and "boom" in page
    # the results table is turned (a row per metric, a column per decoder) so it fits 1280 px
    results = page[page.index("<h2>Identifiability") : page.index("<h2>Paired differences")]
    assert "<th>metric</th>" in results and results.count("<th>additive</th>") == 1
    assert 'src="http' not in page


def test_rows_of_an_older_schema_rebuild_their_trial_spec():
    """A field missing from an older row takes the behaviour that row was produced with:
    the code BatchNorm, plain Linear tail and uniform L of the earlier recipe, the cosine
    floor that lr_decay_gamma used to be; other fields their defaults."""
    import pandas as pd

    from additive.spec import TrialSpec
    from analysis.plots import row_trial_fields

    row = pd.Series(
        {
            **TrialSpec(decoder="monolithic", seed=3, lr_decay="cosine", lr_decay_gamma=0.1).to_dict(),
            "channels": None,
            "support_param": None,
            "code_batch_norm": None,
            "mlp_tail": None,
            "l_density": None,
            "lr_floor": None,
        }
    )
    spec = TrialSpec.from_dict(row_trial_fields(row))
    assert spec.channels == 64 and spec.support_param is None and spec.decoder == "monolithic" and spec.seed == 3
    assert spec.code_batch_norm is True and spec.mlp_tail == "linear" and spec.l_density == "uniform"
    assert spec.lr_floor == 0.1


def test_model_plots_without_weights_name_the_command_and_write_nothing(known, tmp_path):
    import pytest

    from additive.errors import AdxError

    before = sorted(p for p in known.rglob("*"))
    with pytest.raises(AdxError) as err:
        make_plots(["known"], str(known), "extrapolation", str(tmp_path / "plots"), trial="a-0.0-s0")
    assert str(err.value) == (
        "no saved weights for trial a-0.0-s0 of sweep 'known': run the sweep with `save_weights: true`, or train "
        f"this trial again from its row and save its weights with `adx trial retrain known a-0.0-s0 --storage {known}`"
    )
    assert sorted(p for p in known.rglob("*")) == before


def test_report_lists_skipped_files(known, tmp_path):
    import pytest

    from analysis.load import ResultsWarning

    victim = sorted((known / "known" / "trials").glob("*.parquet"))[0]
    victim.write_bytes(victim.read_bytes()[:50])
    with pytest.warns(ResultsWarning, match=victim.name):
        page = write_report(["known"], str(known), str(tmp_path / "report.html")).read_text()
    assert "<h2>Skipped files</h2>" in page and victim.name in page
    assert "12 trials from" in page
