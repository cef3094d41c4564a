"""Every committed study is data: its report (tables, best point, plots) is rebuilt from its two per-seed files
alone, exactly as committed, so a table edited by hand, or per-seed rows rerun without their report, fail here."""

import shutil
from pathlib import Path

import pytest

from tests.conftest import ROOT

STUDIES = sorted(p for p in (ROOT / "scripts" / "results" / "sweeps").iterdir() if p.is_dir())
TEXT = ("results.csv", "results.md", "best.yaml")


def test_every_committed_study_is_a_sweep_file_with_per_seed_rows():
    assert STUDIES
    for study in STUDIES:
        assert (ROOT / "configs" / "sweeps" / f"{study.name}.yaml").is_file(), study.name
        assert (study / "results_per_seed.csv").is_file() and (study / "epochs_per_seed.csv").is_file(), study.name


@pytest.mark.parametrize("study", STUDIES, ids=[p.name for p in STUDIES])
def test_a_committed_report_rebuilds_from_its_per_seed_files(study, tmp_path, monkeypatch):
    from PIL import Image

    from src.sweep.report import PER_EPOCH, PER_SEED, report
    from src.sweep.spec import load

    monkeypatch.chdir(ROOT)
    for name in (PER_SEED, PER_EPOCH):
        shutil.copy(study / name, tmp_path / name)
    report(None, load(Path("configs/sweeps") / f"{study.name}.yaml"), tmp_path)
    committed = {p.name for p in study.iterdir()} - {"provenance.json"}  # provenance.json: written with the rows
    assert {p.name for p in tmp_path.iterdir()} == committed
    for name in TEXT:
        assert (tmp_path / name).read_text() == (study / name).read_text(), f"{study.name}/{name}"
    for png in sorted(n for n in committed if n.endswith(".png")):  # pixels: PNG compression may differ
        ours, theirs = Image.open(tmp_path / png), Image.open(study / png)
        assert ours.size == theirs.size and ours.tobytes() == theirs.tobytes(), f"{study.name}/{png}"


def test_the_pareto_front_by_hand():
    """Maximize the first objective, minimize parameters: (0.97, 100) beats (0.96, 200); (0.98, 300) and (0.95, 50)
    trade off against it; a tie in both is no domination."""
    from src.sweep.report import pareto
    from src.sweep.spec import Sweep

    sweep = Sweep(name="p", base=[], params={}, trade_offs=[{"metric": "num_params", "direction": "minimize"}])
    table = [{"objective_mean": a, "params": p} for a, p in [(0.97, 100), (0.96, 200), (0.98, 300), (0.95, 50), (0.97, 100)]]
    assert pareto(table, sweep) == [True, False, True, True, True]
