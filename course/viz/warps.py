"""What one warp does at one instruction, drawn from the tracer's per-thread records (lessons 04
and 05), in the style of GPU-Puzzles: the 32 lanes on top, the elements they touch below, a line
from each lane to its element.

Global memory is drawn along byte addresses with its 32-byte sectors shaded: the cost of the
request is the number of sectors that hold a touched element. Shared memory is drawn as its 32
banks: each lane's word sits in its bank's column, one row per distinct word of that bank, so the
number of rows is the conflict degree. The records come from ``kernels.trace.accesses`` (grouped
by ``kernels.trace.warp_requests``); any objects with ``lane``, ``address``, ``size``, ``index``,
``array``, ``space`` and ``kind`` attributes do.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle

SECTOR = 32


def request_cost(request) -> dict:
    """``sectors`` (global: distinct 32-byte sectors) or ``degree`` (shared: most distinct words
    one bank delivers, 4-byte words) of one warp request, with its ``lanes`` and ``useful_bytes``."""
    lanes = [r for r in request if r.address is not None]
    useful = len({r.address for r in lanes}) * (lanes[0].size if lanes else 0)
    out = {"lanes": len(lanes), "useful_bytes": useful}
    if lanes and lanes[0].space == "shared":
        words = {}
        for r in lanes:
            for w in range(r.address // 4, (r.address + r.size - 1) // 4 + 1):
                words.setdefault(w % 32, set()).add(w)
        out["degree"] = max(len(ws) for ws in words.values())
    else:
        out["sectors"] = len({s for r in lanes for s in range(r.address // SECTOR, (r.address + r.size - 1) // SECTOR + 1)})
    return out


def _lanes(ax, request, targets, colour):
    for r, (x, y) in zip(request, targets):
        ax.add_patch(Rectangle((r.lane - 0.4, 2.0), 0.8, 0.6, facecolor=colour, edgecolor="black", linewidth=0.5))
        ax.text(r.lane, 2.3, str(r.lane), ha="center", va="center", fontsize=6)
        ax.plot([r.lane, x], [2.0, y], color=colour, linewidth=0.6, alpha=0.7)
    ax.text(-1.2, 2.3, "lane", ha="right", va="center", fontsize=8)


def _draw_global(ax, request):
    lo = min(r.address for r in request) // SECTOR * SECTOR
    hi = -(-max(r.address + r.size for r in request) // SECTOR) * SECTOR
    scale = 31.0 / max(hi - lo, 1)  # addresses mapped onto the 32 lanes' width
    touched = {s for r in request for s in range((r.address - lo) // SECTOR, (r.address + r.size - 1 - lo) // SECTOR + 1)}
    sectors = (hi - lo) // SECTOR
    for s in range(sectors):
        ax.add_patch(Rectangle((s * SECTOR * scale - 0.5, 0.0), SECTOR * scale, 0.6, linewidth=0,
                               facecolor="#f4b6b6" if s in touched else "0.93"))
    targets = [((r.address - lo + r.size / 2) * scale - 0.5, 0.6) for r in request]
    for r, (x, _) in zip(request, targets):
        ax.add_patch(Rectangle((x - 0.4 * r.size * scale, 0.1), 0.8 * r.size * scale, 0.4, facecolor="tab:blue"))
    for s in range(sectors):  # sector borders on top: a touched sector is paid in full
        ax.add_patch(Rectangle((s * SECTOR * scale - 0.5, 0.0), SECTOR * scale, 0.6, fill=False,
                               edgecolor="black", linewidth=0.8 if sectors <= 64 else 0.2))
    ax.text(-1.2, 0.3, f"{sectors} x 32 B", ha="right", va="center", fontsize=7)
    return targets


def _draw_shared(ax, request):
    rows = {}
    targets = []
    for r in request:
        word = r.address // 4
        column = rows.setdefault(word % 32, [])
        if word not in column:
            column.append(word)
        targets.append((word % 32, -0.8 * column.index(word) + 0.6))
    depth = max(len(w) for w in rows.values())
    for bank in range(32):  # every bank's column, used or not
        ax.add_patch(Rectangle((bank - 0.45, -0.8 * (depth - 1) - 0.05), 0.9, 0.8 * (depth - 1) + 0.7,
                               facecolor="0.95", edgecolor="0.8", linewidth=0.4))
    for bank, words in rows.items():
        for k, w in enumerate(words):
            ax.add_patch(Rectangle((bank - 0.4, -0.8 * k), 0.8, 0.6, facecolor="tab:blue", alpha=0.6))
    ax.text(-1.2, 0.3, "bank", ha="right", va="center", fontsize=8)
    for b in range(0, 32, 4):
        ax.text(b, -0.8 * depth - 0.2, str(b), ha="center", fontsize=6)
    return targets


def draw_warp_request(request, ax=None, title: str | None = None):
    """One warp request (the records of its lanes) as lanes above and memory below; returns the axes."""
    ax = ax if ax is not None else plt.gca()
    request = sorted((r for r in request if r.address is not None), key=lambda r: r.lane)
    if not request:
        raise ValueError("the request has no in-bounds access to draw")
    cost = request_cost(request)
    shared = request[0].space == "shared"
    targets = _draw_shared(ax, request) if shared else _draw_global(ax, request)
    _lanes(ax, request, targets, "tab:orange" if request[0].kind == "store" else "tab:green")
    first, last = request[0], request[-1]
    what = f"{first.kind}s of {first.array}{list(first.index)} .. {last.array}{list(last.index)}"
    price = f"conflict degree {cost['degree']}" if shared else \
        f"{cost['sectors']} sectors = {SECTOR * cost['sectors']} bytes for {cost['useful_bytes']} useful"
    ax.set_title(title or f"{cost['lanes']} lanes, {what}: {price}", fontsize=9)
    ax.set_xlim(-4, 32)
    ax.set_ylim(min(y for _, y in targets) - 1.2, 3.0)
    ax.axis("off")
    return ax
