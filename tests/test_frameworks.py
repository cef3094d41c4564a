"""src/frameworks.py is the one boundary to the libraries: no other module of src/ filters a warning or a log
record, or uses one of the private names it wraps."""

import re
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
FILTERS = re.compile(r"\b(filterwarnings|simplefilter|catch_warnings|addFilter)\b")
PRIVATE = re.compile(
    r"\._(save_last_checkpoint|monitor_candidates|should_skip_saving_checkpoint|should_save_on_train_epoch_end|"
    r"storage|trial_id)\b|\bbatch_progress\b|overrides\.distributed|\"_class_path\"|optuna\.study\._optimize"
)


def code_lines(path: Path) -> list[tuple[int, str]]:
    return [(n, line) for n, line in enumerate(path.read_text().splitlines(), 1) if not line.lstrip().startswith("#")]


def test_the_boundary_holds_what_it_claims():
    text = (SRC / "frameworks.py").read_text()
    assert FILTERS.search(text) and PRIVATE.search(text)


def test_no_other_module_filters_warnings_or_touches_private_names():
    found = [
        f"{p.relative_to(SRC)}:{n}: {line.strip()}"
        for p in SRC.rglob("*.py")
        if p.name != "frameworks.py"
        for n, line in code_lines(p)
        if FILTERS.search(line) or PRIVATE.search(line)
    ]
    assert not found, found
