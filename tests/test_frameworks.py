"""src/frameworks.py is the one boundary to the libraries: no other module of src/ filters a warning or a log
record, or uses one of the private names it wraps."""

import re
import warnings
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


def test_quiet_drops_the_short_run_logging_advice_and_nothing_else():
    from src import frameworks

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        frameworks.quiet()
        warnings.warn(
            "The number of training batches (20) is smaller than the logging interval Trainer(log_every_n_steps=50).",
            UserWarning,
            stacklevel=1,
        )
        warnings.warn("The number of validation batches is 0", UserWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["The number of validation batches is 0"]
