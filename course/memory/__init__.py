"""Memory planning (lesson 09): where every intermediate tensor lives in one arena.

Three small pieces, as TFLite's arena planner is: ``liveness`` (when each tensor is alive),
``place`` (an offset per tensor, by one of ``STRATEGIES``) and an ``Arena`` that owns one buffer
and hands out views. Around them: the ``lower_bound`` no placement can beat, in-place merging,
concatenation in place (``merge_into``), workspaces, MindSpore's double cursor, and ``validate``.
Everything works on plain data (``{tensor: (first_step, last_step)}``, ``{tensor: bytes}``); the
``plan_*`` adapters read a runtime ``Plan`` by attribute, since ``course.runtime`` imports this
package and not the reverse.
"""
from course.memory.alias_into import merge_into, plan_concat_candidates, with_chunks
from course.memory.arena import Arena
from course.memory.best import place_best, search_order
from course.memory.best_fit import FreeBlocks, place_best_fit
from course.memory.bound import live_bytes, lower_bound
from course.memory.cursor import DoubleCursor, double_cursor
from course.memory.describe import describe
from course.memory.greedy import (
    by_breadth_order, by_size_order, neighbours, place_greedy_by_breadth,
    place_greedy_by_size, place_in_order, place_naive, smallest_gap,
)
from course.memory.inplace import (
    INPLACE_OPS, merge_inplace, plan_inplace_candidates, plan_merge_inplace, with_aliases,
)
from course.memory.liveness import liveness, plan_outputs, plan_sizes, plan_steps, plan_types, step_liveness
from course.memory.place import STRATEGIES, place
from course.memory.planner import MemoryPlan, plan_memory, tensor_names
from course.memory.report import memory_report
from course.memory.sizes import DEFAULT_ALIGNMENT, static_shape, tensor_bytes
from course.memory.validate import MemoryPlanError, arena_bytes, validate
from course.memory.workspace import add_workspaces, im2col_bytes, plan_workspaces, workspace_key

__all__ = [
    "Arena", "DEFAULT_ALIGNMENT", "DoubleCursor", "FreeBlocks", "INPLACE_OPS", "MemoryPlan",
    "MemoryPlanError", "STRATEGIES", "add_workspaces", "arena_bytes", "by_breadth_order",
    "by_size_order", "describe", "double_cursor", "im2col_bytes", "live_bytes", "liveness", "lower_bound",
    "memory_report", "merge_inplace", "merge_into", "neighbours", "place", "place_best",
    "place_best_fit", "place_greedy_by_breadth", "place_greedy_by_size", "place_in_order",
    "place_naive", "plan_concat_candidates", "plan_inplace_candidates", "plan_memory", "plan_merge_inplace",
    "plan_outputs", "plan_sizes", "plan_steps", "plan_types", "search_order", "smallest_gap",
    "static_shape", "step_liveness", "tensor_bytes", "tensor_names", "validate", "with_aliases", "with_chunks",
    "workspace_key",
]
