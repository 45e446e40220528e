"""Pictures for the lessons (matplotlib, and ipywidgets for the interactive ones), one module per
topic: ``course.viz.graph`` draws graphs and pass reports, ``course.viz.memory`` memory plans,
``course.viz.quant`` calibration histograms and sensitivity, ``course.viz.prune`` accuracy
against sparsity. Nothing here is imported by the engine, and importing this package loads no
plotting library (each module imports its own)."""
