"""Execute a notebook in a separate Jupyter kernel with the course's hardening.

``HardenedClient`` (plain nbclient, used by ``grade``, works without nbgrader, e.g. on Colab)
and ``HardenedExecute`` (nbgrader's Execute preprocessor, used by ``autograde``) share one mixin:

* per-cell timeout with interrupt; a cell that times out gets an error output;
* a kernel that dies (``os._exit``) does not abort grading: every later cell is marked not run;
* each cell's stored output is capped while it arrives (no memory blow-up on an output flood);
* the kernel starts with the CUDA simulator switched on when no GPU exists and a hidden
  preamble that silences Numba's warnings (see ``settings``);
* when the worker was given a sandbox (``sandbox.SPEC_ENV``), the kernel starts inside it: a private
  copy of the package, limits, no network, the course files out of reach (see ``sandbox``);
* the execute reply's status is recorded per cell, so scoring never depends on outputs that
  learner code could clear or fake;
* with ``progress_path``, the notebook is saved after every cell, so a run killed by the outer
  wall-clock limit still yields the results of the cells that finished.
"""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
from jupyter_core.utils import run_sync
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode

from autograder.sandbox import current_spec, exit_reason, make_kernel_manager_class
from autograder.settings import Limits, kernel_arguments

STATUS_KEY = "autograder_status"  # cell metadata written by the grader only, after merge


def error_output(ename: str, evalue: str) -> NotebookNode:
    return nbformat.v4.new_output("error", ename=ename, evalue=evalue,
                                  traceback=[f"{ename}: {evalue}"])


class HardeningMixin:
    """Shared behaviour; mix in front of an nbclient ``NotebookClient`` subclass."""

    def _harden(self, limits: Limits, progress_path: str | None) -> None:
        self.timeout = limits.cell_timeout
        self.startup_timeout = limits.startup_timeout
        self.interrupt_on_timeout = True
        self.allow_errors = True
        self.raise_on_iopub_timeout = False
        self.iopub_timeout = 10
        self.error_on_timeout = {
            "ename": "CellTimeoutError", "evalue": f"the cell ran longer than {limits.cell_timeout} s",
            "traceback": [f"CellTimeoutError: the cell ran longer than {limits.cell_timeout} s"],
        }
        self._sandbox = current_spec()
        if self._sandbox is not None:
            self.kernel_manager_class = make_kernel_manager_class()
            self.extra_arguments = kernel_arguments(self._sandbox.path / "pkgs" / "autograder")
        else:
            self.extra_arguments = kernel_arguments()
        self.record_timing = False
        self.shutdown_kernel = "immediate"
        self._limits = limits
        self._progress_path = progress_path
        self._dead = False
        self._chars: dict[int, int] = {}

    # -- output capping -------------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        limits = self._limits
        note = (f"\n[output truncated by the grader: more than {limits.output_chars} characters "
                f"or {limits.outputs_per_cell} outputs in one cell]\n")
        used = self._chars.get(cell_index, 0)
        if used is None:  # already truncated: drop the rest of the flood
            return None
        if len(outs) >= limits.outputs_per_cell:
            self._chars[cell_index] = None
            outs.append(nbformat.v4.new_output("stream", name="stdout", text=note))
            return None
        content = msg.get("content", {})
        if msg.get("msg_type") == "stream":
            text = content.get("text", "")
            room = limits.output_chars - used
            if len(text) > room:
                content["text"] = text[:max(room, 0)] + note
                self._chars[cell_index] = None
            else:
                self._chars[cell_index] = used + len(text)
        elif msg.get("msg_type") in ("display_data", "execute_result", "update_display_data"):
            size = sum(len(v) if isinstance(v, str) else 0 for v in content.get("data", {}).values())
            if size > 50 * limits.output_chars:  # a huge image or HTML table: keep a note instead
                content["data"] = {"text/plain": f"[display of {size} characters dropped by the grader]"}
        return super().output(outs, msg, display_id, cell_index)

    # -- cell execution -------------------------------------------------------------------
    async def async_execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        if cell.cell_type != "code" or not cell.source.strip():
            return cell
        if self._dead:
            cell.outputs = [error_output("NotRun", "the kernel had died before this cell")]
            cell.metadata[STATUS_KEY] = "not-run"
            return cell
        cell.metadata[STATUS_KEY] = "running"
        self._save_progress()
        try:
            await super().async_execute_cell(cell, cell_index, execution_count, store_history)
        except DeadKernelError:
            self._dead = True
            why = exit_reason(self._sandbox) if self._sandbox is not None else ""
            cell.outputs.append(error_output("DeadKernelError", "the kernel died while running this cell"
                                             + (f": {why}" if why else "")))
            cell.metadata[STATUS_KEY] = "dead"
        except CellTimeoutError as e:
            cell.outputs.append(error_output("CellTimeoutError", str(e).splitlines()[0]))
            cell.metadata[STATUS_KEY] = "timeout"
        self._save_progress()
        return cell

    def execute_cell(self, cell, cell_index, execution_count=None, store_history=True):
        # nbclient binds ``execute_cell`` to its own coroutine at class creation; route it here
        # (nbconvert's ExecutePreprocessor, hence nbgrader, calls this synchronous form).
        return run_sync(self.async_execute_cell)(cell, cell_index, execution_count, store_history)

    def _record_reply(self, **kwargs):
        """Hook after each cell: keep the reply status; make sure a failed cell shows an error."""
        cell, reply = kwargs.get("cell"), kwargs.get("execute_reply") or {}
        status = reply.get("content", {}).get("status", "error")
        if cell is not None:
            cell.metadata[STATUS_KEY] = "ok" if status == "ok" else "error"
            content = reply.get("content", {})
            if status != "ok" and content.get("ename") == "CellTimeoutError":
                # the kernel's own error (KeyboardInterrupt from the interrupt) says less than this
                cell.outputs.insert(0, error_output("CellTimeoutError", content.get("evalue", "")))
            elif status != "ok" and not any(o.get("output_type") == "error" for o in cell.outputs):
                cell.outputs.append(error_output(content.get("ename", "Error"), content.get("evalue", "")))

    def _save_progress(self) -> None:
        if self._progress_path:
            tmp = f"{self._progress_path}.tmp"
            Path(tmp).write_text(nbformat.writes(self.nb), encoding="utf-8")
            os.replace(tmp, self._progress_path)


class HardenedClient(HardeningMixin, NotebookClient):
    """nbclient with the course's hardening: ``HardenedClient(nb, limits, cwd).execute()``."""

    def __init__(self, nb, limits: Limits, cwd: str, progress_path: str | None = None):
        super().__init__(nb, resources={"metadata": {"path": cwd}}, kernel_name="python3")
        self._harden(limits, progress_path)
        self.on_cell_executed = self._record_reply


def mark_unfinished(nb, why: str = "the time limit for the whole notebook ran out") -> None:
    """After a run was cut short: every code cell that did not finish carries an error."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        status = cell.metadata.get(STATUS_KEY)
        if status in (None, "running"):
            what = f"was still running when {why}" if status == "running" else f"was not run: {why}"
            cell.outputs = list(cell.get("outputs", [])) + [error_output("NotRun", f"this cell {what}")]
            cell.metadata[STATUS_KEY] = "not-run"
