"""Self-grading on Colab: the notebook a learner edits lives in the browser and in Drive, not on
the Colab machine's disk, so ``python -m autograder grade`` has no file to read. ``save_notebook``
asks the Colab front end for the open notebook (the request Colab's own "download .ipynb" uses)
and writes it where the grader can find it::

    import course.colab; course.colab.save_notebook("00_welcome.ipynb")
    !python -m autograder grade 00_welcome.ipynb
"""
from __future__ import annotations

import json
import os
from pathlib import Path


def save_notebook(path: str | os.PathLike, timeout_s: float = 30.0) -> Path:
    """Write the notebook open in this Colab tab to ``path`` (as saved: run your cells first, the
    grader runs a fresh copy anyway) and return the path. Outside Colab this raises, saying what to
    do instead: there the notebook is already a file."""
    try:
        from google.colab import _message  # only on Colab
    except ImportError:
        raise RuntimeError("save_notebook is for Colab; in Jupyter your notebook is already a file: "
                           "save it (Ctrl+S) and grade that file") from None
    reply = _message.blocking_request("get_ipynb", timeout_sec=timeout_s)
    nb = reply.get("ipynb") if isinstance(reply, dict) else None
    if not isinstance(nb, dict) or "cells" not in nb:
        raise RuntimeError("Colab did not return the notebook; use File > Download > Download .ipynb, "
                           "upload it to the Files pane and grade that file")
    out = Path(path)
    out.write_text(json.dumps(nb, indent=1))
    return out
