"""report.html: what a scoring run found, for a reader who looks before reading the CSV files.

One self-contained file (pictures embedded as PNG data, no external links): the distribution of predicted
DockQ, the top of the ranking (per target when labels give targets), and with labels, per target, a
predicted-vs-true scatter with Pearson, Spearman and the top-1 loss marked. The numbers come from
model/evaluation.py, the same as evaluation.csv's. The file is well-formed XML (XHTML), so that it can be
checked with any XML parser.
"""

from __future__ import annotations

import base64
import math
import os
from collections.abc import Mapping, Sequence
from html import escape

import numpy as np

from data.files import write_text_atomically
from model.evaluation import ACCEPTABLE_DOCKQ, Evaluation, TargetScores, evaluate, ranking_order
from model.plots import DOCKQ_CLASSES, new_figure, png_bytes

HISTOGRAM_SIZE = (800, 360)  # pixels
SCATTER_SIZE = (440, 440)
TOP_MODELS = 10  # rows of the ranking shown per target
SKIPPED_SHOWN = 50
ALL_MODELS = "all models"  # the one ranking shown without a target column

STYLE = """
body { font-family: sans-serif; margin: 2em auto; max-width: 62em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.2em 0.7em; text-align: left; }
td.number { text-align: right; font-variant-numeric: tabular-nums; }
section.target { border-top: 2px solid #888; margin-top: 2em; }
.figure { display: block; margin: 0.5em 0; }
.note { color: #555; }
"""


def write_report(
    path: str | os.PathLike, names: Sequence[str], predictions: Sequence[float],
    labels: Mapping[str, tuple[float, str]] | None = None, skipped: Sequence[tuple[str, str]] = (), *,
    top: int = TOP_MODELS, overwrite: bool = False,
) -> None:
    """Write report.html atomically. `labels`: MODEL -> (true DockQ, target), as infer.py reads --labels;
    `skipped`: (file, reason) of the inputs that could not be scored."""
    # Plain ASCII, other characters as references: the file reads the same whatever the locale's encoding.
    text = report_html(names, predictions, labels, skipped, top=top).encode("ascii", "xmlcharrefreplace").decode()
    write_text_atomically(path, text, overwrite)


def report_html(
    names: Sequence[str], predictions: Sequence[float], labels: Mapping[str, tuple[float, str]] | None = None,
    skipped: Sequence[tuple[str, str]] = (), *, top: int = TOP_MODELS,
) -> str:
    predicted = [float(value) for value in predictions]
    parts = [
        "<!DOCTYPE html>",
        '<html xmlns="http://www.w3.org/1999/xhtml" lang="en"><head><meta charset="utf-8"/>',
        f"<title>TopoQA report: {len(names)} models</title><style>{STYLE}</style></head><body>",
        "<h1>TopoQA scoring report</h1>",
        f'<p class="summary">{len(names)} model(s) scored, {len(skipped)} file(s) skipped'
        f"{' (listed at the end and in skipped.csv)' if skipped else ''}.</p>",
    ]
    if names:
        parts.append("<h2>Predicted DockQ</h2>")
        parts.append(image(*histogram(predicted), "predicted-dockq-distribution"))
    labelled = [i for i, name in enumerate(names) if labels is not None and name in labels]
    if labels is not None and labelled:
        parts += labelled_sections(names, predicted, labels, labelled, top)
    elif names:
        why = ("None of the scored models has a label." if labels is not None else
               "No labels: run infer.py with --labels to compare with true DockQ per target.")
        parts.append(f'<p class="note">{why}</p>')
        parts.append(target_section(ALL_MODELS, list(names), predicted, None, None, top))
    if skipped:
        parts.append(skipped_table(skipped))
    parts.append("</body></html>\n")
    return "\n".join(parts)


def labelled_sections(
    names: Sequence[str], predicted: list[float], labels: Mapping[str, tuple[float, str]], labelled: list[int],
    top: int,
) -> list[str]:
    models = [names[i] for i in labelled]
    targets = [labels[name][1] for name in models]
    values = [predicted[i] for i in labelled]
    true = [labels[name][0] for name in models]
    evaluation = evaluate(models, targets, values, true)
    parts = ["<h2>Evaluation against the labels</h2>", "<ul>"]
    parts += [f"<li>{escape(line)}</li>" for line in evaluation.summary_lines()]
    parts.append("</ul>")
    unlabelled = len(names) - len(labelled)
    if unlabelled:
        parts.append(f'<p class="note">{unlabelled} scored model(s) have no label: they are in the distribution '
                     "above and in ranking.csv, not below.</p>")
    parts.append(targets_table(evaluation))
    by_target: dict[str, list[int]] = {}
    for k, target in enumerate(targets):
        by_target.setdefault(target, []).append(k)
    for scores in evaluation.targets:
        index = by_target[scores.target]
        parts.append(target_section(
            scores.target, [models[k] for k in index], [values[k] for k in index], [true[k] for k in index],
            scores, top,
        ))
    return parts


def targets_table(evaluation: Evaluation) -> str:
    """One row per target, the numbers of evaluation.csv (each cell's data-value is the same text)."""
    columns = ("MODELS", "PEARSON", "SPEARMAN", "MSE", "TOP1_LOSS", "TOP1_HIT", "TOP5_HIT")
    rows = ['<table class="targets"><tr><th>TARGET</th>' + "".join(f"<th>{c}</th>" for c in columns) + "</tr>"]
    for t in evaluation.targets:
        cells = [number(t.models), number(t.pearson), number(t.spearman), number(t.mse), number(t.top1_loss),
                 number(int(t.top1_hit)), number(int(t.top5_hit))]
        rows.append(f'<tr data-target="{escape(t.target)}"><td>{escape(t.target)}</td>{"".join(cells)}</tr>')
    rows.append("</table>")
    return "\n".join(rows)


def target_section(
    target: str, models: list[str], predicted: list[float], true: list[float] | None, scores: TargetScores | None,
    top: int,
) -> str:
    """A target's heading, its scatter (with labels) and the top of its ranking."""
    order = ranking_order(models, predicted)
    parts = [f'<section class="target" data-target="{escape(target)}">', f"<h2>{escape(target)}</h2>"]
    if scores is not None and true is not None:
        parts.append(f"<p>{len(models)} model(s); Pearson {fixed(scores.pearson)}, Spearman "
                     f"{fixed(scores.spearman)}, top-1 loss {fixed(scores.top1_loss)}.</p>")
        parts.append(image(*scatter(target, models, predicted, true, scores), "scatter"))
    shown = order[:top]
    header = "<tr><th>RANK</th><th>MODEL</th><th>PRED_DOCKQ</th>" + ("<th>DOCKQ</th>" if true else "") + "</tr>"
    rows = [f'<table class="ranking"><caption>top {len(shown)} of {len(models)} by predicted DockQ</caption>',
            header]
    for rank, i in enumerate(shown, start=1):
        true_cell = number(true[i]) if true else ""
        rows.append(f'<tr data-model="{escape(models[i])}"><td class="number">{rank}</td>'
                    f"<td>{escape(models[i])}</td>{number(predicted[i])}{true_cell}</tr>")
    rows.append("</table>")
    return "\n".join([*parts, *rows, "</section>"])


def skipped_table(skipped: Sequence[tuple[str, str]]) -> str:
    shown = skipped[:SKIPPED_SHOWN]
    rows = [f'<h2>Skipped files</h2><table class="skipped"><caption>{len(shown)} of {len(skipped)}</caption>',
            "<tr><th>MODEL</th><th>REASON</th></tr>"]
    rows += [f"<tr><td>{escape(name)}</td><td>{escape(reason)}</td></tr>" for name, reason in shown]
    rows.append("</table>")
    return "\n".join(rows)


def number(value: float | int) -> str:
    """A table cell: 4 decimals to read, the full value (as the CSV files write it) in data-value."""
    shown = str(value) if isinstance(value, int) else fixed(value)
    return f'<td class="number" data-value="{value!r}">{shown}</td>'


def fixed(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def short(name: str, width: int = 32) -> str:
    return name if len(name) <= width else name[: width - 3] + "..."


def image(png: bytes, description: str, kind: str) -> str:
    encoded = base64.b64encode(png).decode("ascii")
    return (f'<img class="figure {kind}" alt="{escape(description)}" title="{escape(description)}" '
            f'src="data:image/png;base64,{encoded}"/>')


def histogram(predicted: list[float]) -> tuple[bytes, str]:
    """Counts of predicted DockQ in bins of 0.02 over [0, 1], CAPRI class boundaries marked."""
    figure = new_figure(*HISTOGRAM_SIZE)
    axes = figure.add_subplot()
    axes.hist(np.clip(predicted, 0, 1), bins=np.linspace(0, 1, 51), color="#4477aa", edgecolor="white")
    for threshold, name in DOCKQ_CLASSES:
        axes.axvline(threshold, color="#888", linestyle=":", linewidth=1)
        axes.text(threshold + 0.005, 0.98, name, transform=axes.get_xaxis_transform(), va="top", fontsize=8,
                  color="#555")
    axes.set_xlim(0, 1)
    axes.set_xlabel("predicted DockQ")
    axes.set_ylabel("models")
    median = float(np.median(predicted))
    acceptable = sum(value >= ACCEPTABLE_DOCKQ for value in predicted)
    axes.set_title(f"{len(predicted)} models: median {median:.3f}, {acceptable} predicted >= {ACCEPTABLE_DOCKQ}")
    description = (f"histogram of predicted DockQ: {len(predicted)} models, median {median:.4f}, "
                   f"min {min(predicted):.4f}, max {max(predicted):.4f}")
    return png_bytes(figure, description), description


def scatter(
    target: str, models: list[str], predicted: list[float], true: list[float], scores: TargetScores,
) -> tuple[bytes, str]:
    """Predicted (y) against true DockQ (x); the top-ranked model and the truly best one marked, the top-1 loss
    drawn as the gap in true DockQ between them (an arrow at the top-1's height)."""
    figure = new_figure(*SCATTER_SIZE)
    axes = figure.add_subplot()
    axes.plot([0, 1], [0, 1], color="#bbb", linestyle="--", linewidth=1, label="predicted = true")
    axes.scatter(true, predicted, s=14, color="#4477aa", alpha=0.7, linewidths=0, label="models")
    first = ranking_order(models, predicted)[0]
    best = max(range(len(models)), key=lambda i: (true[i], i == first))  # the top-1 itself when it is best
    axes.scatter([true[best]], [predicted[best]], s=110, facecolors="none", edgecolors="#228833", linewidths=2,
                 label=f"best true: {short(models[best])}")
    axes.scatter([true[first]], [predicted[first]], s=140, marker="*", color="#cc3311",
                 label=f"top-1: {short(models[first])}")
    if scores.top1_loss > 0:
        axes.annotate("", xy=(true[best], predicted[first]), xytext=(true[first], predicted[first]),
                      arrowprops={"arrowstyle": "<->", "color": "#cc3311"})
    axes.set_xlim(-0.03, 1.03)  # room for the markers of models at 0 or 1
    axes.set_ylim(-0.03, 1.03)
    axes.set_aspect("equal")
    axes.set_xlabel("true DockQ")
    axes.set_ylabel("predicted DockQ")
    axes.set_title(f"{short(target, 48)}\nPearson {fixed(scores.pearson)}  Spearman {fixed(scores.spearman)}  "
                   f"top-1 loss {fixed(scores.top1_loss)}", fontsize=10)
    axes.legend(loc="upper left", fontsize=7, frameon=False)
    description = (f"target {target}: {len(models)} models, Pearson {fixed(scores.pearson)}, Spearman "
                   f"{fixed(scores.spearman)}, top-1 {models[first]}, best {models[best]}, "
                   f"top-1 loss {fixed(scores.top1_loss)}")
    return png_bytes(figure, description), description
