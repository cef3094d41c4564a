"""The result blocks of README.md and of every docs/*.md page agree with the committed files, and any one number
changed by hand, in any page, is caught."""

import re

import pytest

from src import results
from tests.conftest import ROOT

PAGES = {page.relative_to(ROOT).as_posix(): page.read_text() for page in results.pages()}
README = PAGES["README.md"]
NUMBER = re.compile(r"\d+\.\d+|\d[\d,]*")


def blocks(text: str) -> list[re.Match]:
    return list(results.BLOCK.finditer(text))


def test_every_page_agrees_with_the_committed_results(capsys):
    assert results.main(["--check"]) == 0
    total = sum(len(blocks(text)) for text in PAGES.values())
    docs = len(PAGES) - 1
    assert capsys.readouterr().out == f"README.md and {docs} docs pages agree with scripts/results/ ({total} blocks)\n"
    assert [m["args"] for m in blocks(README)] == ["table mnist", "table fashion_mnist"]  # README's two tables
    assert len(blocks(PAGES["docs/performance.md"])) >= 60  # every table and figure there: from its file
    assert total >= 120 and sum(1 for text in PAGES.values() if blocks(text)) >= 5


def test_every_docs_page_is_linked_from_readme():
    assert len(PAGES) > 5
    for name in PAGES:
        assert name == "README.md" or f"]({name}" in README, f"{name} is not linked from README.md"


def numbers_in_blocks(text: str) -> list[tuple[int, int]]:
    """(start, end) of every number inside every block's body."""
    spans = []
    for block in blocks(text):
        start = block.start("body")
        spans += [(start + m.start(), start + m.end()) for m in NUMBER.finditer(block["body"])]
    return spans


def test_every_number_in_a_block_edited_by_hand_is_caught(tmp_path):
    checked = 0
    for name, text in PAGES.items():
        copy = tmp_path / name.replace("/", "_")
        for start, end in numbers_in_blocks(text):
            old = text[start:end]
            digit = next(i for i in range(len(old) - 1, -1, -1) if old[i].isdigit())  # its last digit, one up
            new = old[:digit] + str((int(old[digit]) + 1) % 10) + old[digit + 1 :]
            copy.write_text(text[:start] + new + text[end:])
            caught = results.main(["--check", "--readme", str(copy)]) == 1
            assert caught, f"{name}: {old} -> {new} at {start} not caught"
            checked += 1
    assert checked > 100


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A copy of README.md and docs/ that python -m src.results reads as the repository's (scripts/results/ stays)."""
    for name, text in PAGES.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.setattr(results, "ROOT", tmp_path)
    return tmp_path


def test_a_number_changed_in_a_docs_page_is_caught_by_the_plain_check(tree, capsys):
    page = tree / "docs" / "seeds.md"
    start, end = numbers_in_blocks(page.read_text())[0]
    text = page.read_text()
    page.write_text(text[:start] + "7" * (end - start) + text[end:])
    assert results.main(["--check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("stale: docs/seeds.md: <!-- results ") and err.count("\n") == 1


def test_rewriting_restores_what_was_edited_in_every_page(tree):
    for name in PAGES:
        spans = numbers_in_blocks(PAGES[name])
        if spans:
            start, end = spans[0]
            (tree / name).write_text(PAGES[name][:start] + "0" * (end - start) + PAGES[name][end:])
    assert results.main([]) == 0
    assert {name: (tree / name).read_text() for name in PAGES} == PAGES


def test_rewriting_one_copy_restores_it(tmp_path):
    copy = tmp_path / "README.md"
    start, end = numbers_in_blocks(README)[0]
    copy.write_text(README[:start] + "0" * (end - start) + README[end:])
    assert results.main(["--readme", str(copy)]) == 0 and copy.read_text() == README


def test_a_marker_that_lost_its_end_is_an_error_not_skipped(tree, capsys):
    page = tree / "docs" / "performance.md"
    page.write_text(page.read_text().replace("<!-- /results -->", "", 1))
    assert results.main(["--check"]) == 2
    assert capsys.readouterr().err.startswith("error: a results marker in docs/performance.md: ")


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
