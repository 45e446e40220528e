"""A small feedback page for the cases where nbgrader could not write one (unreadable notebook,
no submission, a run stopped by the wall-clock limit)."""
from __future__ import annotations

import html
from pathlib import Path


def write_feedback(path: Path, student: str, lesson: str, problem: str, tests, notes=()) -> None:
    rows = "\n".join(
        f"<tr><td>{html.escape(t.id)}</td><td>{t.score:g} / {t.points:g}</td>"
        f"<td>{html.escape(t.message) or 'passed'}</td></tr>" for t in tests)
    items = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
    total, maximum = sum(t.score for t in tests), sum(t.points for t in tests)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(lesson)}: feedback for {html.escape(student)}</title>
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto}}td,th{{padding:.2em .8em;text-align:left}}
.problem{{background:#fff3cd;padding:1em;border-left:4px solid #d39e00}}</style></head>
<body>
<h1>{html.escape(lesson)}: feedback for {html.escape(student)}</h1>
<p class="problem"><strong>Your notebook could not be graded normally.</strong> {html.escape(problem)}</p>
{f"<ul>{items}</ul>" if items else ""}
<h2>Score: {total:g} / {maximum:g}</h2>
<table><tr><th>test</th><th>points</th><th>result</th></tr>
{rows}
</table>
<p>Check your notebook with <code>python -m autograder grade {html.escape(lesson)}.ipynb</code>
before submitting; it runs the same tests under the same limits.</p>
</body></html>
"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
