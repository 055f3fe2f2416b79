"""The page of `edge hil run --report DIR`: DIR/index.html, the campaign's summary table
and, per run, its verdict table, notes, measures and the images hil.report drew. No
script and nothing from the network; every text that comes from a file is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from edge.errors import EdgeError

if TYPE_CHECKING:
    from hil.runner import RunResult

_CSS = """
body{font-family:sans-serif;margin:1.5em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:.5em 0 1em}td,th{border:1px solid #ccc;padding:3px 7px;
text-align:left;vertical-align:top;font-size:90%}th{background:#eee}
.pass{color:#2e7d32;font-weight:bold}.fail{color:#c62828;font-weight:bold}
code{font-size:90%}img{max-width:100%;display:block;margin:.3em 0 1.2em}
section{border-top:2px solid #888;margin-top:2em}.small{color:#555;font-size:90%}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _verdict(r: RunResult) -> str:
    word = "pass" if r.passed else "error" if r.error else "fail"
    return f'<span class="{"pass" if r.passed else "fail"}">{word}</span>'


def _anchor(i: int) -> str:
    return f"run-{i}"


def write_report(results: Sequence[RunResult], directory: Path) -> Path:
    """DIR/index.html for the campaign; its images were drawn by the runs. Returns its path."""
    from hil.temporal import _show

    passed = sum(r.passed for r in results)
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>edge hil run report</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>edge hil run</h1>",
           f'<p>{passed} of {len(results)} runs passed · written '
           f'{datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}</p>',
           "<table><tr><th>run</th><th>verdict</th><th>ticks</th><th>assertions</th>"
           "<th>trace sha256</th></tr>"]
    for i, r in enumerate(results):
        out.append(f'<tr><td><a href="#{_anchor(i)}">{_e(r.id)}</a></td><td>{_verdict(r)}</td>'
                   f"<td>{r.ticks}</td><td>{sum(v.passed for v in r.verdicts)}/"
                   f"{len(r.verdicts)}</td><td><code>{_e(r.sha256[:16] or '-')}</code></td></tr>")
    out.append("</table>")
    for i, r in enumerate(results):
        out.append(f'<section id="{_anchor(i)}"><h2>{_e(r.id)} {_verdict(r)}</h2>')
        if r.description:
            out.append(f"<p>{_e(r.description)}</p>")
        params = ", ".join(f"{k} = {v}" for k, v in r.params.items()) or "none"
        out.append(f'<p class="small">file <code>{_e(r.file)}</code> · seed {r.seed} · '
                   f"parameters {_e(params)} · {r.ticks} ticks in {r.seconds:.2f} s · "
                   f"trace sha256 <code>{_e(r.sha256 or '-')}</code></p>")
        if r.error is not None:
            out.append(f'<p class="fail">the run could not be carried out: {_e(r.error)}</p>')
        if r.verdicts:
            out.append("<table><tr><th>line</th><th>verdict</th><th>tick</th><th>values</th>"
                       "<th>assertion</th></tr>")
            for v in r.verdicts:
                shown = ", ".join(f"{k} = {_show(x)}" for k, x in v.values.items())
                detail = f" ({v.detail})" if v.detail else ""
                out.append(f"<tr><td>{_e(v.where)}</td><td class=\"{'pass' if v.passed else 'fail'}"
                           f"\">{'pass' if v.passed else 'FAIL'}</td>"
                           f"<td>{'' if v.tick is None else v.tick}</td>"
                           f"<td>{_e(shown + detail)}</td><td><code>{_e(v.assertion)}</code>"
                           "</td></tr>")
            out.append("</table>")
        extra = [*r.notes, *(m.line() for m in r.measures)]
        if extra:
            out.append("<ul>" + "".join(f"<li>{_e(t)}</li>" for t in extra) + "</ul>")
        for f in r.figures:
            out.append(f"<h3>{_e(f.title)}</h3><img src=\"{_e(quote(f.file, safe='/=,'))}\" "
                       f'alt="{_e(f.title)}">')
        out.append("</section>")
    out.append("</body></html>")
    path = directory / "index.html"
    try:
        path.write_text("\n".join(out), encoding="utf-8")
    except OSError as exc:
        raise EdgeError(f"cannot write {path}: {exc.strerror}") from None
    return path
