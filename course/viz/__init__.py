"""Pictures for the lessons (matplotlib, and ipywidgets for the interactive ones), one module per
topic: ``course.viz.tensor`` strides and views (with an explorer widget), ``course.viz.im2col``
the im2col patch and column, ``course.viz.graph`` graphs and pass reports, ``course.viz.memory``
memory plans, ``course.viz.quant`` calibration histograms and sensitivity, ``course.viz.prune``
accuracy against sparsity, ``course.viz.tiles`` tiled matmul (tile march, micro-tiles, tile-size
explorer), ``course.viz.banks`` shared-memory banks (bank explorer), ``course.viz.warps`` one warp's
accesses from the tracer's records. Nothing here is imported by the engine, and importing this package
loads no plotting library (each module imports its own)."""
