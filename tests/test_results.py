"""README's result blocks agree with the committed files, and any one number changed by hand is caught."""

import re

import pytest

from src import results
from tests.conftest import ROOT

README = (ROOT / "README.md").read_text()
NUMBER = re.compile(r"\d+\.\d+|\d[\d,]*")


def test_readme_agrees_with_the_committed_results():
    assert results.main(["--check"]) == 0
    blocks = list(results.BLOCK.finditer(README))
    assert any(m["args"].startswith("table ") for m in blocks) and len(blocks) >= 10
    performance = README[README.index("## Performance") : README.index("## Results")]
    assert len(list(results.BLOCK.finditer(performance))) >= 60  # every table and figure there: from its file


def numbers_in_blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of every number inside every block's body."""
    spans = []
    for block in results.BLOCK.finditer(text):
        start = block.start("body")
        spans += [(start + m.start(), start + m.end()) for m in NUMBER.finditer(block["body"])]
    return spans


def test_every_number_in_a_block_edited_by_hand_is_caught(tmp_path):
    spans = numbers_in_blocks(README)
    assert len(spans) > 100
    copy = tmp_path / "README.md"
    for start, end in spans:
        old = README[start:end]
        digit = next(i for i in range(len(old) - 1, -1, -1) if old[i].isdigit())  # its last digit, one up
        new = old[:digit] + str((int(old[digit]) + 1) % 10) + old[digit + 1 :]
        copy.write_text(README[:start] + new + README[end:])
        assert results.main(["--check", "--readme", str(copy)]) == 1, f"{old} -> {new} at {start} not caught"


def test_rewriting_restores_what_was_edited(tmp_path):
    copy = tmp_path / "README.md"
    start, end = numbers_in_blocks(README)[0]
    copy.write_text(README[:start] + "0" * (end - start) + README[end:])
    assert results.main(["--readme", str(copy)]) == 0 and copy.read_text() == README


def test_a_figure_is_read_from_its_file():
    assert "\n| total | 3.68 | 3.71 | 3.73 | 3.45 |\n" in results.render(
        "startup_cpu.json median_s"
    )  # a column a command
    assert results.render("benchmark_cpu.json ratios_per_rep:T/R") == "1.26–2.34"  # a list: its range
    assert results.render("benchmark_cpu.json epochs:T:samples_per_s ,.0f") == "130,036"
    text = results.render("bench_manual_step_cpu.txt")
    assert text.startswith("\n```\ntorch ") and text.endswith("GFLOP/s\n```\n")


@pytest.mark.parametrize(
    "marker",
    [
        "<!-- results table no_such_study -->",
        "<!-- results width no_metric -->",
        "<!-- results no_such.json a -->",
        "<!-- results benchmark_cpu.json epochs:X -->",
        "<!-- results benchmark_cpu.json ratios_per_rep:T/R:9 -->",
    ],
)
def test_a_bad_marker_is_one_line_and_exit_2(tmp_path, marker, capsys):
    copy = tmp_path / "README.md"
    copy.write_text(f"x {marker}1<!-- /results -->\n")
    assert results.main(["--check", "--readme", str(copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: a results marker") and err.count("\n") == 1
