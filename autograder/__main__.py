"""``python -m autograder build|grade|autograde|check|release`` — see docs/instructors.md."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from autograder.layout import Layout, LayoutError, default_root


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    ap.add_argument("--root", type=Path, default=None,
                    help="course root holding solutions/ and lessons/ (default: this repository)")
    sub = ap.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="regenerate lessons/ from solutions/ with nbgrader")
    b.add_argument("lessons", nargs="*", metavar="LESSON")

    g = sub.add_parser("grade", help="self-grade one notebook (no nbgrader needed)")
    g.add_argument("notebook", type=Path)
    g.add_argument("--lesson", help="NN_name; inferred from the file or folder name when missing")
    g.add_argument("--json", action="store_true", help="print the result as JSON")
    g.add_argument("--timeout", type=int, help="wall-clock limit for the whole notebook (s)")
    g.add_argument("--cell-timeout", type=int, help="limit per cell (s)")

    a = sub.add_parser("autograde", help="grade a class with nbgrader (feedback + CSV)")
    a.add_argument("submissions", type=Path, help="folder of <student>/<lesson>/*.ipynb")
    a.add_argument("--lesson", required=True)
    a.add_argument("--course-dir", type=Path, help="work folder (default: <root>/work)")
    a.add_argument("--timeout", type=int, help="wall-clock limit per student (s)")
    a.add_argument("--cell-timeout", type=int, help="limit per cell (s)")
    a.add_argument("--workers", type=int, default=1,
                   help="students graded at once: local processes, or Dask workers with --dask")
    a.add_argument("--dask", action="store_true",
                   help="grade on Dask distributed (an embedded local cluster of --workers workers)")
    a.add_argument("--scheduler", metavar="ADDRESS",
                   help="grade on an existing Dask cluster, e.g. tcp://10.0.0.5:8786 (implies --dask)")

    r = sub.add_parser("release", help="write a class distribution: lessons, package, visible tests only")
    r.add_argument("dest", type=Path, metavar="DIR")
    r.add_argument("lessons", nargs="*", metavar="LESSON", help="default: every lesson")
    r.add_argument("--repo", help="git URL the class distribution will be pushed to (for Colab)")
    r.add_argument("--force", action="store_true", help="replace DIR if it exists")

    c = sub.add_parser("check", help="instructor gate: solutions full marks, lessons 0, build fresh")
    c.add_argument("lessons", nargs="*", metavar="LESSON")
    c.add_argument("--jobs", type=int, default=2)
    return ap


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    from autograder.settings import ensure_tools_on_path

    ensure_tools_on_path()
    layout = Layout((args.root or default_root()).resolve())
    try:
        if args.command == "build":
            from autograder.build import build_lessons

            for lesson, dest in build_lessons(layout, layout.resolve(args.lessons)):
                print(f"built {dest.relative_to(layout.root) if dest.is_relative_to(layout.root) else dest}")
            return 0
        if args.command == "grade":
            from autograder.grade import grade_notebook, print_report
            from autograder.settings import Limits

            if not args.notebook.exists():
                print(f"error: no such notebook: {args.notebook}", file=sys.stderr)
                return 2
            limits = Limits.from_env(submission_timeout=args.timeout, cell_timeout=args.cell_timeout)
            lesson = layout.resolve([args.lesson])[0] if args.lesson else None
            print_report(grade_notebook(args.notebook, layout, lesson, limits), args.json)
            return 0
        if args.command == "autograde":
            from autograder.classroom import autograde_class
            from autograder.settings import Limits

            limits = Limits.from_env(submission_timeout=args.timeout, cell_timeout=args.cell_timeout)
            lesson = layout.resolve([args.lesson])[0]
            return autograde_class(layout, args.submissions, lesson, args.course_dir, limits,
                                   workers=max(1, args.workers), dask=args.dask, scheduler=args.scheduler)
        if args.command == "release":
            from autograder.release import release

            return release(layout, args.dest, layout.resolve(args.lessons), repo=args.repo, force=args.force)
        if args.command == "check":
            from autograder.check import check_lessons

            return check_lessons(layout, layout.resolve(args.lessons), jobs=max(1, args.jobs))
    except LayoutError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 2


if __name__ == "__main__":
    sys.exit(main())
