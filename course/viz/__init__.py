"""Pictures for the lessons (matplotlib, and ipywidgets for the interactive ones), one module per
topic: ``course.viz.memory`` draws memory plans. Nothing here is imported by the engine, and
importing this package loads no plotting library (each module imports its own)."""
