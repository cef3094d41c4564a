"""The result numbers of README.md and of every docs/*.md page, written from the committed studies' files
(scripts/results/sweeps/<study>/results.csv, itself rebuilt from the study's per-seed rows: src/sweep/report.py), never
by hand:

    python -m src.results            # rewrite every marked block of README.md and docs/*.md from the files
    python -m src.results --check    # exit 1, naming each page and block, where a page disagrees with the files
    python -m src.results --check --readme COPY.md   # only that page (--readme again for more pages)

A block is the text between a marker and <!-- /results -->:
    <!-- results table STUDY -->               the study's table: a row per point, test accuracy mean ± std (± the
                                               95 % interval's half-width), its paired difference to the best point
    <!-- results STUDY METRIC [KEY=VALUE] -->  inline: METRIC's mean ± std of each point (where column KEY is VALUE),
                                               joined by " / "; METRIC: test_acc, val_acc_best or objective; or
                                               its paired difference, test_acc_vs_best or _vs_ref (the sweep's
                                               reference point); or a plain column: epochs, wall_s, params
    <!-- results FILE [PATH [SPEC]] -->        a benchmark's figure from scripts/results/FILE: a .json file's value
                                               at PATH (keys joined by ":", quoted where one has spaces) or a text
                                               file's whole text. A number is formatted by SPEC (Python's format spec,
                                               default .2f), a list of numbers as its min–max, a text as a code block,
                                               a table of tables as a Markdown table (a row per inner key, a column per
                                               outer key)
"""

import argparse
import functools
import json
import re
import shlex
import sys
from pathlib import Path

from src.sweep.report import difference, percent, read_csv
from src.sweep.spec import column, load

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "scripts" / "results"
STUDIES = RESULTS / "sweeps"
SWEEPS = ROOT / "configs" / "sweeps"
BLOCK = re.compile(r"(<!-- results (?P<args>[^\n]*?) -->)(?P<body>.*?)(<!-- /results -->)", re.DOTALL)


def cached(read):
    """read(path), read again only when the file changed: the pages have hundreds of markers over a dozen files."""
    memo = functools.lru_cache(maxsize=None)(lambda path, stamp: read(path))
    return lambda path: memo(path, path.stat().st_mtime_ns)


@cached
def keys_of(path: Path) -> list[str]:
    return [column(k) for k in load(path).params]


def keys(study: str) -> list[str]:
    """The study's point columns (hidden, net, trick, ...): its sweep file's swept keys, as its report names them."""
    return keys_of(SWEEPS / f"{study}.yaml")


rows_of = cached(read_csv)
figures_of = cached(lambda path: json.loads(path.read_text()) if path.suffix == ".json" else path.read_text())


def study_rows(study: str) -> list[dict]:
    path = STUDIES / study / "results.csv"
    if not path.is_file():
        raise ValueError(
            f"no {path.relative_to(ROOT)}: run the study's sweep (python -m src.sweep "
            f"configs/sweeps/{study}.yaml) or fix the marker"
        )
    return rows_of(path)


def table(study: str) -> str:
    rows = study_rows(study)
    names = keys(study)
    lines = [
        f"| {' | '.join(names)} | params | test acc, mean ± std (± 95 % interval) | against the best point, "
        "paired by seed | epochs | wall s | seeds |",
        "|" + "---|" * (len(names) + 6),
    ]
    lines += [
        f"| {' | '.join(str(r[k]) for k in names)} | {r['params']:,} | "
        f"{percent(r['test_acc_mean'], r['test_acc_std'], r['test_acc_ci95'])} | {difference(r, 'test_acc')} | "
        f"{r['epochs']:.1f} | {r['wall_s']:.0f} | {r['seeds']} |"
        for r in rows
    ]
    return "\n" + "\n".join(lines) + "\n"


def inline(study: str, metric: str, *where: str) -> str:
    rows = study_rows(study)
    for condition in where:
        key, _, value = condition.partition("=")
        rows = [r for r in rows if str(r.get(key)) == value]
    if not rows:
        raise ValueError(f"no point of {study} where {' and '.join(where)}")
    if "_vs_" in metric:
        name, _, to = metric.rpartition("_vs_")
        return " / ".join(difference(r, name, to) for r in rows)
    if f"{metric}_mean" not in rows[0]:
        return " / ".join(f"{r[metric]:.1f}" if isinstance(r[metric], float) else f"{r[metric]:,}" for r in rows)
    return " / ".join(f"{100 * r[f'{metric}_mean']:.2f} ± {100 * r[f'{metric}_std']:.2f}" for r in rows) + " %"


def figure(file: str, path: str = "", spec: str = ".2f") -> str:
    """A benchmark file's figure (a text file: the whole of it, as a code block)."""
    try:
        value = figures_of(RESULTS / file)
    except OSError:
        raise ValueError(f"no scripts/results/{file}: run the command that writes it (docs/performance.md)") from None
    for key in filter(None, path.split(":")):
        value = value[int(key) if isinstance(value, list) else key]
    if isinstance(value, str):
        return f"\n```\n{value.strip()}\n```\n"
    if isinstance(value, list):
        return f"{min(value):{spec}}–{max(value):{spec}}"
    if isinstance(value, dict):  # {column: {row: number}}
        columns, rows = list(value), list(next(iter(value.values())))
        lines = [f"| {path.split(':')[-1]} | {' | '.join(columns)} |", "|---" * (len(columns) + 1) + "|"]
        lines += [f"| {r} | {' | '.join(f'{value[c][r]:{spec}}' for c in columns)} |" for r in rows]
        return "\n" + "\n".join(lines) + "\n"
    return f"{value:{spec}}"


def render(args: str) -> str:
    words = shlex.split(args)  # a key with spaces in it is quoted
    if "." in words[0]:  # a file name; study names have no dot
        return figure(*words)
    return table(*words[1:]) if words[0] == "table" else inline(*words)


def rewrite(text: str) -> tuple[str, list[str]]:
    """-> the text with every block rendered from the files, and the markers of the blocks that changed."""
    stale = []

    def one(match: re.Match) -> str:
        body = render(match["args"])
        if body != match["body"]:
            stale.append(match[1])
        return match[1] + body + match[4]

    return BLOCK.sub(one, text), stale


def pages() -> list[Path]:
    """The pages that carry numbers: README.md and every docs/*.md page (one without a marker agrees trivially)."""
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def shown(page: Path) -> str:
    return str(page.relative_to(ROOT)) if page.is_relative_to(ROOT) else str(page)


def agreed(checked: list[Path], blocks: int, default: bool) -> str:
    """A passing check's one line, e.g. "README.md and 12 docs pages agree with scripts/results/ (126 blocks)"."""
    if default:
        what = f"README.md and {len(checked) - 1} docs pages agree"
    else:
        what = ", ".join(shown(p) for p in checked) + (" agrees" if len(checked) == 1 else " agree")
    return f"{what} with scripts/results/ ({blocks} blocks)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m src.results", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 where a page is stale")
    parser.add_argument(
        "--readme",
        "--page",
        dest="pages",
        metavar="PAGE",
        type=Path,
        action="append",
        help="a page to rewrite or check, instead of README.md and docs/*.md (repeat for more)",
    )
    args = parser.parse_args(argv)
    checked = args.pages or pages()
    rewritten, stale, blocks = {}, [], 0
    for page in checked:
        try:
            text = page.read_text()
            opened, closed = text.count("<!-- results "), text.count("<!-- /results -->")
            found = len(BLOCK.findall(text))
            if not opened == closed == found:  # a marker without its end (or an end without its marker) is unchecked
                raise ValueError(f"{opened} markers, {closed} ends, {found} blocks: a marker or its end is missing")
            rewritten[page], changed = rewrite(text)
        except (
            ValueError,
            TypeError,
            KeyError,
            IndexError,
            OSError,
        ) as err:  # UsageError (a missing sweep file) is a ValueError
            print(f"error: a results marker in {shown(page)}: {err}", file=sys.stderr)
            return 2
        stale += [(page, marker) for marker in changed]
        blocks += found
    if args.check:
        for page, marker in stale:
            print(f"stale: {shown(page)}: {marker} (python -m src.results rewrites it from the files)", file=sys.stderr)
        if stale:
            return 1
        print(agreed(checked, blocks, default=args.pages is None))
        return 0
    for page in checked:
        count = sum(p == page for p, _ in stale)
        if count:
            page.write_text(rewritten[page])
            print(f"{shown(page)}: {count} block(s) rewritten")
    print(f"{len(stale)} of {blocks} block(s) rewritten in {len(checked)} page(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
