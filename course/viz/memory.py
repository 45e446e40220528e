"""Pictures of a memory plan (lesson 09): the placement as rectangles, live bytes per step against
the lower bound, and a slider that steps through a model's plan.

A placement is drawn the way the planning papers draw it (Pisarchyk & Lee 2020, figure 2): time
(the step) along x, the arena's bytes along y, one rectangle per tensor from its first to its
last step and from its offset to its offset plus its size. Two tensors may share bytes exactly
when their rectangles do not overlap, so a wrong plan is visible as overlapping rectangles.
"""
from __future__ import annotations

from typing import Hashable, Mapping, Optional, Sequence

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

Interval = tuple[int, int]


def _scale(unit: int) -> str:
    return {1: "bytes", 1024: "KiB", 1024 * 1024: "MiB"}.get(unit, f"x {unit} bytes")


def _colour(i: int):
    return plt.get_cmap("tab20")(i % 20)


def draw_plan(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int],
              offsets: Mapping[Hashable, int], ax=None, names: Optional[Mapping] = None,
              step: Optional[int] = None, unit: int = 1024, labels: Optional[bool] = None,
              title: Optional[str] = None):
    """Each tensor as a rectangle: steps ``first .. last`` along x, bytes ``[offset, offset +
    size)`` along y (in ``unit``\\ s). With ``step``, the tensors alive at that step are drawn
    solid, the others faded, and a line marks the step. ``labels`` (default: fewer than 40
    tensors) writes each tensor's name in its rectangle. Returns the axes."""
    ax = ax if ax is not None else plt.gca()
    tensors = [t for t in intervals if sizes[t] > 0]
    labels = len(tensors) < 40 if labels is None else labels
    top = 0
    for i, t in enumerate(tensors):
        (first, last), lo, n = intervals[t], offsets[t] / unit, sizes[t] / unit
        alive = step is None or first <= step <= last
        ax.add_patch(Rectangle((first - 0.45, lo), last - first + 0.9, n, facecolor=_colour(i),
                               edgecolor="black", linewidth=0.5, alpha=0.9 if alive else 0.15))
        top = max(top, lo + n)
        if labels:
            name = str(names.get(t, t) if names else t)
            ax.text((first + last) / 2, lo + n / 2, name, ha="center", va="center", fontsize=8)
    last_step = max((last for _, last in intervals.values()), default=0)
    ax.axhline(top, color="black", linestyle="--", linewidth=1)
    ax.text(last_step + 0.5, top, f" arena {top:g} {_scale(unit)}", va="bottom", ha="right", fontsize=8)
    if step is not None:
        ax.axvline(step, color="crimson", linewidth=1)
    ax.set_xlim(-0.6, last_step + 0.6)
    ax.set_ylim(0, max(top, 1e-9) * 1.08)
    ax.set_xlabel("step")
    ax.set_ylabel(f"offset ({_scale(unit)})")
    if title:
        ax.set_title(title)
    return ax


def draw_live_bytes(live: Sequence[int], ax=None, arenas: Optional[Mapping[str, int]] = None,
                    unit: int = 1024, title: Optional[str] = None):
    """Bytes alive at each step as a staircase, its maximum (the lower bound) as a dashed line,
    and each ``{label: arena bytes}`` of ``arenas`` as a dotted line above it. Returns the axes."""
    ax = ax if ax is not None else plt.gca()
    steps = range(len(live))
    ax.step(steps, [b / unit for b in live], where="mid", color="tab:blue", label="live bytes")
    ax.fill_between(steps, [b / unit for b in live], step="mid", color="tab:blue", alpha=0.2)
    bound = max(live, default=0)
    ax.axhline(bound / unit, color="black", linestyle="--", linewidth=1,
               label=f"lower bound {bound / unit:g} {_scale(unit)}")
    for i, (label, nbytes) in enumerate((arenas or {}).items()):
        ax.axhline(nbytes / unit, color=_colour(2 * i + 2), linestyle=":", linewidth=1.5,
                   label=f"{label} {nbytes / unit:g} {_scale(unit)}")
    ax.set_xlabel("step")
    ax.set_ylabel(_scale(unit))
    ax.legend(fontsize=8, loc="upper right")
    if title:
        ax.set_title(title)
    return ax


def alive_at(intervals: Mapping[Hashable, Interval], step: int) -> list:
    """The tensors whose interval contains ``step``, in the order of ``intervals``."""
    return [t for t, (first, last) in intervals.items() if first <= step <= last]


def plan_slider(intervals: Mapping[Hashable, Interval], sizes: Mapping[Hashable, int],
                offsets: Mapping[Hashable, int], names: Optional[Mapping] = None,
                step_names: Optional[Sequence[str]] = None, unit: int = 1024, live: Optional[Sequence[int]] = None):
    """An ipywidgets slider over the steps: the plan with the tensors alive at the chosen step
    highlighted, the live bytes below it, and the live tensors listed with their offsets.
    ``step_names[i]`` names step i (e.g. its node); ``live`` is the bytes alive per step
    (computed from the intervals when omitted). Returns the widget box to display."""
    import ipywidgets as widgets

    last_step = max((last for _, last in intervals.values()), default=0)
    if live is None:
        live = [sum(sizes[t] for t in alive_at(intervals, s)) for s in range(last_step + 1)]
    out = widgets.Output()
    slider = widgets.IntSlider(value=0, min=0, max=last_step, description="step",
                               continuous_update=False, layout=widgets.Layout(width="60%"))

    def show(change=None):
        s = slider.value
        with out:
            out.clear_output(wait=True)
            fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6), sharex=True,
                                              gridspec_kw={"height_ratios": [3, 1]})
            draw_plan(intervals, sizes, offsets, ax=top, names=names, step=s, unit=unit, labels=False)
            draw_live_bytes(live, ax=bottom, unit=unit)
            bottom.axvline(s, color="crimson", linewidth=1)
            title = f"step {s}" + (f": {step_names[s]}" if step_names else "")
            top.set_title(f"{title} ({live[s] / unit:g} {_scale(unit)} alive)")
            plt.show()
            plt.close(fig)
            for t in sorted(alive_at(intervals, s), key=lambda t: offsets[t]):
                name = names.get(t, t) if names else t
                print(f"  {str(name):<28} bytes [{offsets[t]:>9}, {offsets[t] + sizes[t]:>9})  "
                      f"steps {intervals[t][0]}..{intervals[t][1]}")

    slider.observe(show, names="value")
    show()
    return widgets.VBox([slider, out])
