"""The shared runner of the studies (scripts/study_*.py): run a grid through the CLI, read the event files
back, write <out>/results.md and PNG plots.

Each run is `fit` then `test --ckpt_path best`, in this process, logged under <out>/logs/<label>/. Every number
in results.md is read from the event files (num_params, best val/acc, test/acc, epochs) except wall time.
"""

import argparse
import time
from pathlib import Path

from PIL import Image, ImageDraw

from src.cli import main as cli
from src.runs import read_scalars

COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", default="study_results", help="results.md, the PNGs and the runs' logs land here")
    p.add_argument("--epochs", type=int, default=30, help="max epochs per run (early stopping may end it sooner)")
    p.add_argument("--limit-batches", type=float, default=1.0, help="fraction of batches per epoch, for quick runs")
    p.add_argument("--data-dir", default=None, help="data root (default: $DATA_DIR, else ./data)")
    return p


def run(label: str, config: str, overrides: list[str], args) -> dict:
    """fit + test --ckpt_path best of one grid point; returns its row and curves (read from event files)."""
    common = ["--config", config, "--trainer.logger.init_args.save_dir", str(Path(args.out) / "logs"),
              "--trainer.logger.init_args.name", label, "--trainer.enable_progress_bar", "false",
              "--trainer.enable_model_summary", "false", *overrides]
    if args.data_dir:
        common += ["--data.init_args.data_dir", args.data_dir]
    start = time.time()
    try:
        # Only training is limited: validation (5 batches of 1,000 on MNIST) stays whole, so accuracies compare.
        cli(["fit", *common, "--trainer.max_epochs", str(args.epochs), "--trainer.limit_train_batches", str(args.limit_batches)])
        wall = time.time() - start
        cli(["test", *common, "--ckpt_path", "best"])
    except SystemExit as stop:  # the CLI has printed its one-line reason (e.g. the data set is missing)
        return {"label": label, "config": config, "error": f"not run (exit {stop.code})"}
    run_dir = max((Path(args.out) / "logs" / label).glob("version_*"), key=lambda p: p.stat().st_mtime)
    fit, test = read_scalars(run_dir), read_scalars(max(run_dir.glob("test_*"), key=lambda p: p.stat().st_mtime))
    return {"label": label, "config": config, "params": int(fit["num_params"][0][1]),
            "best_val_acc": max(v for _, v in fit["val/acc"]), "test_acc": test["test/acc"][-1][1],
            "epochs": len(fit["val/acc"]), "wall_s": wall, "curves": fit}


def write_results(title: str, rows: list[dict], out: Path, notes: str = "") -> None:
    out.mkdir(parents=True, exist_ok=True)
    lines = [f"# {title}", "", notes, "", "| run | config | parameters | best val acc | test acc (best ckpt) | epochs | wall time |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['label']} | `{r['config']}` | {r['error']} | | | | |")
        else:
            lines.append(f"| {r['label']} | `{r['config']}` | {r['params']:,} | {r['best_val_acc']:.4f} | {r['test_acc']:.4f} "
                         f"| {r['epochs']} | {r['wall_s']:.1f} s |")
    (out / "results.md").write_text("\n".join(lines) + "\n\n![loss](loss.png)\n![accuracy](accuracy.png)\n")
    done = [r for r in rows if "curves" in r]
    for name, tags in (("loss", ("train/loss", "val/loss")), ("accuracy", ("train/acc", "val/acc"))):
        panels = [(tag, {r["label"]: r["curves"].get(tag, []) for r in done}) for tag in tags]
        line_chart(panels).save(out / f"{name}.png")
    print(f"wrote {out / 'results.md'}")


def line_chart(panels: list[tuple[str, dict[str, list[tuple[int, float]]]]], w: int = 520, h: int = 360) -> Image.Image:
    """Panels side by side, each: one line per run against gradient steps, a legend below. Drawn with PIL."""
    labels = sorted({label for _, series in panels for label in series})
    legend_h = 16 * len(labels) + 10
    img = Image.new("RGB", (w * len(panels), h + legend_h), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    for k, (title, series) in enumerate(panels):
        x0, y0, x1, y1 = k * w + 60, 30, (k + 1) * w - 20, h - 40
        points = [p for pts in series.values() for p in pts]
        draw.rectangle([x0, y0, x1, y1], outline=(0, 0, 0))
        draw.text((x0, 8), f"{title} vs gradient steps", fill=(0, 0, 0))
        if not points:
            continue
        xmin, xmax = min(p[0] for p in points), max(p[0] for p in points) or 1
        ymin, ymax = min(p[1] for p in points), max(p[1] for p in points)
        ymax = ymax if ymax > ymin else ymin + 1
        scale = lambda x, y: (x0 + (x - xmin) / max(xmax - xmin, 1) * (x1 - x0), y1 - (y - ymin) / (ymax - ymin) * (y1 - y0))  # noqa: E731
        for v in (ymin, (ymin + ymax) / 2, ymax):
            draw.text((k * w + 4, scale(xmin, v)[1] - 6), f"{v:.3g}", fill=(0, 0, 0))
        draw.text((x0, y1 + 6), f"{xmin}", fill=(0, 0, 0))
        draw.text((x1 - 40, y1 + 6), f"{xmax}", fill=(0, 0, 0))
        for label, pts in series.items():
            colour = COLOURS[labels.index(label) % len(COLOURS)]
            xy = [scale(x, y) for x, y in sorted(pts)]
            if len(xy) > 1:
                draw.line(xy, fill=colour, width=2)
            for x, y in xy if len(xy) < 40 else []:
                draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
    for i, label in enumerate(labels):
        draw.rectangle([10, h + 6 + 16 * i, 24, h + 16 + 16 * i], fill=COLOURS[i % len(COLOURS)])
        draw.text((30, h + 4 + 16 * i), label, fill=(0, 0, 0))
    return img
