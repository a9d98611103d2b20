"""The evaluation report: Markdown with SVG plots (score by kind, latency) and
every wrong answer next to what was expected. No plotting library needed."""
from __future__ import annotations

import html
from pathlib import Path

PALETTE = ["#2563eb", "#f59e0b", "#10b981", "#ef4444", "#8b5cf6"]


def bar_chart_svg(groups: list[str], series: dict[str, list[float]], title: str, ymax: float = 100.0) -> str:
    """Grouped vertical bars: one group per label, one bar per series."""
    w_group, bar_w, h, top, left, bottom = 70, 16, 260, 30, 40, 70
    width = left + w_group * len(groups) + 150
    y = lambda v: top + h - h * min(v, ymax) / ymax  # noqa: E731
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{top + h + bottom}" '
             f'font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    for t in range(0, 101, 25):
        v = ymax * t / 100
        parts.append(f'<line x1="{left}" x2="{left + w_group * len(groups)}" y1="{y(v):.1f}" y2="{y(v):.1f}" '
                     f'stroke="#e5e7eb"/><text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.0f}</text>')
    for gi, g in enumerate(groups):
        x0 = left + gi * w_group + 6
        for si, (name, values) in enumerate(series.items()):
            v = values[gi]
            parts.append(f'<rect x="{x0 + si * bar_w}" y="{y(v):.1f}" width="{bar_w - 2}" '
                         f'height="{top + h - y(v):.1f}" fill="{PALETTE[si % len(PALETTE)]}">'
                         f'<title>{html.escape(name)} {html.escape(g)}: {v:.1f}</title></rect>')
        parts.append(f'<text transform="translate({x0 + 20},{top + h + 10}) rotate(40)">{html.escape(g)}</text>')
    for si, name in enumerate(series):
        ly = top + 14 * si
        lx = left + w_group * len(groups) + 16
        parts.append(f'<rect x="{lx}" y="{ly}" width="10" height="10" fill="{PALETTE[si % len(PALETTE)]}"/>'
                     f'<text x="{lx + 14}" y="{ly + 9}">{html.escape(name)}</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def histogram_svg(values: list[float], title: str, bins: int = 20) -> str:
    if not values:
        values = [0.0]
    lo, hi = 0.0, max(values) * 1.05 or 1.0
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, int((v - lo) / (hi - lo) * bins))] += 1
    w, h, left, top = 24, 200, 40, 30
    cmax = max(counts) or 1
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + w * bins + 20}" height="{top + h + 40}" '
             f'font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{html.escape(title)}</text>']
    for i, c in enumerate(counts):
        bh = h * c / cmax
        parts.append(f'<rect x="{left + i * w}" y="{top + h - bh:.1f}" width="{w - 2}" height="{bh:.1f}" '
                     f'fill="{PALETTE[0]}"><title>{c}</title></rect>')
    for i in range(0, bins + 1, 5):
        parts.append(f'<text x="{left + i * w}" y="{top + h + 14}" text-anchor="middle">'
                     f'{lo + (hi - lo) * i / bins:.0f}</text>')
    parts.append(f'<text x="{left + w * bins / 2}" y="{top + h + 32}" text-anchor="middle">ms per question</text>')
    parts.append("</svg>")
    return "\n".join(parts)


def reliability_svg(bins, title: str, ece: float | None = None) -> str:
    """A reliability diagram: for each probability bin, the share right (bar) against the
    probability stated (the diagonal); bar labels give the questions in the bin."""
    size, left, top, bottom = 260, 44, 30, 46
    x = lambda v: left + size * v    # noqa: E731
    y = lambda v: top + size - size * v    # noqa: E731
    head = f"{title} (ECE {ece:.3f})" if ece is not None else title
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{left + size + 20}" height="{top + size + bottom}" '
             f'font-family="sans-serif" font-size="11">',
             f'<text x="{left}" y="16" font-size="13" font-weight="bold">{html.escape(head)}</text>']
    for t in range(0, 11, 2):
        v = t / 10
        parts.append(f'<line x1="{x(0)}" x2="{x(1)}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#e5e7eb"/>'
                     f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>'
                     f'<text x="{x(v):.1f}" y="{top + size + 14}" text-anchor="middle">{v:.1f}</text>')
    for b in bins:
        if not b.n:
            continue
        parts.append(f'<rect x="{x(b.lo) + 1:.1f}" y="{y(b.accuracy):.1f}" width="{size * (b.hi - b.lo) - 2:.1f}" '
                     f'height="{top + size - y(b.accuracy):.1f}" fill="{PALETTE[0]}" fill-opacity="0.75">'
                     f'<title>{b.lo:.1f}–{b.hi:.1f}: {b.n} questions, stated {b.confidence:.2f}, right {b.accuracy:.2f}'
                     f'</title></rect><text x="{x((b.lo + b.hi) / 2):.1f}" y="{y(b.accuracy) - 3:.1f}" '
                     f'text-anchor="middle" font-size="9">{b.n}</text>')
    parts.append(f'<line x1="{x(0)}" y1="{y(0)}" x2="{x(1)}" y2="{y(1)}" stroke="#ef4444" stroke-dasharray="4 3"/>')
    parts.append(f'<text x="{left + size / 2}" y="{top + size + 32}" text-anchor="middle">stated probability'
                 f' (bars: share right)</text>')
    parts.append("</svg>")
    return "\n".join(parts)


COLUMNS = [("n", "{:.0f}"), ("em", "{:.1f}"), ("f1", "{:.1f}"), ("answerable_em", "{:.1f}"),
           ("answerable_f1", "{:.1f}"), ("recall@1", "{:.1f}"), ("recall@5", "{:.1f}"), ("mrr", "{:.3f}"),
           ("citation_acc", "{:.1f}"), ("noans_p", "{:.1f}"), ("noans_r", "{:.1f}"), ("noans_f1", "{:.1f}"),
           ("answer_precision", "{:.1f}"), ("answer_coverage", "{:.1f}"), ("ece", "{:.3f}"),
           ("p50_ms", "{:.1f}"), ("p95_ms", "{:.1f}")]


def table(rows: dict[str, dict], columns=COLUMNS) -> str:
    cols = [c for c in columns if any(c[0] in r for r in rows.values())]
    head = "| | " + " | ".join(c for c, _ in cols) + " |"
    sep = "|---|" + "---:|" * len(cols)
    lines = [head, sep]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(fmt.format(r[c]) if c in r else "" for c, fmt in cols) + " |")
    return "\n".join(lines)


def write_report(folder: Path, eval_set: str, summaries: dict) -> Path:
    """Write ``report.md`` and its SVG plots into ``folder``; returns the report path."""
    folder.mkdir(parents=True, exist_ok=True)
    names = list(summaries)
    main = summaries[names[0]]
    kinds = sorted({o.kind for o in main.outcomes})
    series = {n: [summaries[n].metrics(lambda o, k=k: o.kind == k).get("f1", 0.0) for k in kinds] for n in names}
    (folder / "f1_by_kind.svg").write_text(bar_chart_svg(kinds, series, "F1 by question kind"), encoding="utf-8")
    from qa.evaluation.metrics import calibration
    bins, ece = calibration((o.score, o.correct) for o in main.outcomes)
    (folder / "reliability.svg").write_text(reliability_svg(bins, f"Reliability ({main.name})", ece), encoding="utf-8")
    (folder / "latency.svg").write_text(
        histogram_svg([o.latency_ms for o in main.outcomes], f"Latency per question ({main.name})"), encoding="utf-8")
    lines = ["# Evaluation report\n", f"Set: `{eval_set}`\n", "## Overall\n",
             table({n: s.metrics() for n, s in summaries.items()}), "",
             "![F1 by kind](f1_by_kind.svg)\n", "![Latency](latency.svg)\n",
             "Reliability: each question's stated probability (its best candidate's, answered or not) "
             "against whether that candidate is right.\n", "![Reliability](reliability.svg)\n",
             f"## By kind and tag ({main.name})\n", table(main.by_kind()), "",
             f"## Wrong answers ({main.name})\n",
             "| id | kind | question | answered | expected | cited |", "|---|---|---|---|---|---|"]
    for o in main.outcomes:
        if o.em >= 1.0:
            continue
        expected = " / ".join(g["text"] for g in o.gold) or "(no answer)"
        got = "(no answer)" if o.predicted_no_answer else o.prediction
        cited = f'{o.cited["doc_id"][:3]} [{o.cited["start"]},{o.cited["end"]})' if o.cited else ""
        cell = lambda s: str(s).replace("|", "\\|").replace("\n", " ")  # noqa: E731
        lines.append(f"| {o.qid} | {o.kind} | {cell(o.question)} | {cell(got)} | {cell(expected)} | {cited} |")
    path = folder / "report.md"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
