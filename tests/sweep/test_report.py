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
    table = [
        {"objective_mean": a, "params": p} for a, p in [(0.97, 100), (0.96, 200), (0.98, 300), (0.95, 50), (0.97, 100)]
    ]
    assert pareto(table, sweep) == [True, False, True, True, True]


def test_an_ablation_is_paired_with_its_reference_point_of_the_same_net():
    """reference: {trick: base}: each point minus the same net's `base` point, seed by seed: for net b's `off`, the
    differences are -0.02, -0.04, -0.03 (mean -0.03, sd 0.01, t(2) 4.303: half-width 0.0248), while the best point
    is another net's."""
    import json

    from src.sweep.report import rows
    from src.sweep.spec import Sweep

    nets, tricks = [{"name": "a"}, {"name": "b"}], [{"name": "off"}, {"name": "base"}]
    sweep = Sweep(
        name="r", base=[], params={"net": nets, "trick": tricks}, seeds=[0, 1, 2], reference={"trick": "base"}
    )
    scores = {
        ("a", "off"): [0.90, 0.91, 0.92],
        ("a", "base"): [0.99, 0.99, 0.99],
        ("b", "off"): [0.93, 0.92, 0.95],
        ("b", "base"): [0.95, 0.96, 0.98],
    }
    points = {
        json.dumps({"net": n, "trick": t}): [
            {
                "seed": s,
                "params": 1,
                "epochs": 1,
                "wall_s": 1.0,
                "objective": v,
                "val_acc_best": v,
                "test_acc": v - 0.01,
            }
            for s, v in enumerate(scores[n["name"], t["name"]])
        ]
        for n in nets
        for t in tricks
    }
    table = {(r["net"], r["trick"]): r for r in rows(points, sweep)}
    b_off = table["b", "off"]
    assert b_off["objective_vs_ref"] == pytest.approx(-0.03) and b_off["objective_vs_ref_ci95"] == pytest.approx(
        0.0248, abs=1e-4
    )
    assert b_off["objective_vs_ref_resolved"] and b_off["vs_ref_seeds"] == 3 and not b_off["reference"]
    assert table["a", "off"]["objective_vs_ref"] == pytest.approx(-0.08) and table["a", "off"][
        "objective_vs_ref_ci95"
    ] == pytest.approx(0.0248, abs=1e-4)
    assert table["b", "base"]["reference"] and table["b", "base"]["objective_vs_ref"] == 0.0
    assert table["a", "base"]["best"] and b_off["objective_vs_best"] == pytest.approx(-0.17 / 3)
