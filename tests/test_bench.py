"""`python -m course.bench` on a tiny model, one timed run: the table has every column, the
ratios are the ratios of the printed times, and the engine's output matched onnxruntime."""
from __future__ import annotations

import math

import numpy as np
import pytest

from course import bench


def test_relative_error_definition():
    b = np.array([[4.0, -8.0, 1.0]])
    assert bench.relative_error(b, b) == 0.0
    assert bench.relative_error(b + [[0.0, 0.0, 0.8]], b) == pytest.approx(0.1)  # 0.8 / 8
    assert bench.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert bench.relative_error(np.ones(3), np.zeros(3)) == math.inf
    with pytest.raises(ValueError):
        bench.relative_error(np.zeros(3), np.zeros(4))


def test_format_table_columns_and_ratios():
    row = bench.Row("m", {"ours": 10.0, "ort_all": 4.0, "ort_none": 5.0, "reference": 500.0}, 2e-6)
    md = bench.format_table([row], markdown=True).splitlines()
    assert [c.strip() for c in md[0].strip("|").split("|")] == list(bench.COLUMNS)
    assert [c.strip() for c in md[2].strip("|").split("|")] == [
        "m", "10.0", "4.00", "5.00", "500", "-", "2.50x", "2.00x", "50.00x", "-", "2.0e-06"]
    with_ref = bench.Row("m", {**row.ms, "ours_ref": 20.0}, 2e-6)
    cells = [c.strip() for c in bench.format_table([with_ref], markdown=True).splitlines()[2].strip("|").split("|")]
    assert cells[5] == "20.0" and cells[9] == "5.00x"  # our reference provider, and its ratio to ORT-all
    assert bench.goal_failures([bench.Row("resnet", dict(row.ms), 0.0)]) == [
        "resnet: ours/ORT-all = 2.50 > 2"]
    no_ref = bench.Row("x", {"ours": 1.0, "ort_all": 1.0, "ort_none": 1.0}, 0.0)
    assert bench.format_table([no_ref]).splitlines()[2].split()[4] == "-"


def test_bench_cli_on_a_tiny_model(capsys):
    rc = bench.main(["--models", "squeezenet", "--tiny", "--repeat", "1", "--warmup", "0",
                     "--markdown"])
    out = capsys.readouterr().out
    assert rc == 0
    for key in ("cpu:", "cores:", "numpy:", "onnxruntime:"):
        assert key in out
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert len(table) == 3, out
    header = [c.strip() for c in table[0].strip("|").split("|")]
    cells = [c.strip() for c in table[2].strip("|").split("|")]
    assert header == list(bench.COLUMNS) and cells[0] == "squeezenet"
    ours, ort_all, ort_none, ref, ours_ref = (_printed(c) for c in cells[1:6])
    assert min(v for v, _ in (ours, ort_all, ort_none, ref, ours_ref)) > 0
    _assert_ratio(cells[6], ours, ort_all)
    _assert_ratio(cells[7], ours, ort_none)
    _assert_ratio(cells[8], ref, ours)
    _assert_ratio(cells[9], ours_ref, ort_all)
    assert float(cells[10]) <= 1e-4, "engine output must match onnxruntime"
    assert "not assessed" in out


def _printed(cell):
    """(value, half a unit of its last printed digit)."""
    decimals = len(cell.split(".")[1]) if "." in cell else 0
    return float(cell), 0.5 * 10.0 ** -decimals


def _assert_ratio(cell, num, den):
    (a, ha), (b, hb) = num, den
    r = float(cell.rstrip("x"))
    assert (a - ha) / (b + hb) - 0.005 <= r <= (a + ha) / (b - hb) + 0.005, (cell, num, den)


def test_bench_rejects_unknown_models():
    with pytest.raises(SystemExit):
        bench.main(["--models", "vgg"])


def test_profile_counts_every_node():
    import course
    from course.models import build_model

    model = build_model("mobilenetv2", **bench.TINY)
    prof = bench.profile_ops(model, warmup=0)
    steps = [st.spec for st in course.InferenceSession(model).plan.steps]
    assert sum(n for n, _ in prof.values()) == len(steps) < len(model.graph.node)  # passes ran
    grouped = sum(1 for n in model.graph.node if n.op_type == "Conv"
                  and any(a.name == "group" and a.i > 1 for a in n.attribute))
    assert sum(n for k, (n, _) in prof.items() if k.endswith("(grouped)")) == grouped == 17
    assert all(ms >= 0 for _, ms in prof.values())
    assert "FusedConv (grouped)" in bench.format_profile("m", prof)


def test_runtimes_take_turns_reference_included(monkeypatch):
    """Every runtime is timed in every round (the reference, with fewer runs, in rounds spread
    over the whole span), so a slow spell of the machine lands on all of them."""
    monkeypatch.setattr(bench, "SETTLE_S", 0.0)
    calls = []
    fns = {k: (lambda k=k: calls.append(k)) for k in ("ours", "ort", "reference")}
    med = bench.interleaved_medians(fns, {"ours": 10, "ort": 10, "reference": 3},
                                    {"ours": 1, "ort": 1, "reference": 0})
    assert set(med) == set(fns)
    assert calls.count("reference") == 3  # no untimed warm-up for the reference
    assert calls.count("ours") == calls.count("ort") == 1 + 10 + bench.ROUNDS  # warm-up, timed, settle
    timed = calls[2:]
    rounds = [i for i, k in enumerate(timed) if k == "ours" and (i == 0 or timed[i - 1] != "ours")]
    assert len(rounds) == bench.ROUNDS
    in_round = [timed[a:b] for a, b in zip(rounds, rounds[1:] + [len(timed)])]
    assert [r.count("reference") for r in in_round] == [1, 0, 1, 0, 1]
    assert bench._per_round(2) == [1, 0, 0, 0, 1] and bench._per_round(1) == [1, 0, 0, 0, 0]
    assert bench._per_round(7) == [2, 2, 1, 1, 1] and sum(bench._per_round(20)) == 20


def test_a_slow_spell_lands_on_every_runtime(monkeypatch):
    """Two equally fast runtimes, the machine three times slower for 8 of the 20 runs (the 9th
    to the 16th): timed one after the other, the second is charged with most of the spell and
    their ratio comes out 3; taking turns, both see it alike and the ratio stays 1."""
    monkeypatch.setattr(bench, "SETTLE_S", 0.0)
    clock = {"t": 0.0, "runs": 0}

    def work():
        clock["runs"] += 1
        clock["t"] += 3.0 if 9 <= clock["runs"] <= 16 else 1.0
    monkeypatch.setattr(bench.time, "perf_counter", lambda: clock["t"])
    one_after_other = [bench.statistics.median(bench._timed_runs(work, 10, 0)) for _ in "ab"]
    assert one_after_other[1] / one_after_other[0] == 3.0
    clock["runs"] = 0
    med = bench.interleaved_medians({"a": work, "b": work}, 10, 0)
    assert med["a"] == med["b"] == 1.0
