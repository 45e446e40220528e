"""What each graded exercise must not lean on: one table for every lesson (read by course.grading).

Per exercise, in lesson order (the position gives the exercise's number in messages):

* ``defines``: what the learner writes: ``name`` (a function or CUDA kernel) or ``Class.method``
  (defined in the class body itself, not inherited from the reference class it extends);
* ``forbid``: reference objects learner code must not call while the exercise's tests run:
  ``module:qualname`` for one function, method or kernel, ``module.*`` for everything defined in a
  module or package (functions, methods, kernels);
* ``restrict``: what the exercise's text forbids, looked for in the answer cell's source:
  ``np.name`` (numpy's function), ``.attr`` (an attribute of anything), ``name`` (a plain name or an
  imported module), ``'text'`` (a string constant), each with the reason shown to the learner;
* ``instead``: what to write instead, shown when a reference is called.

Earlier parts stay usable: lesson 06 may use the IR's types and the ops of lesson 03, lesson 05 the
tracer, lesson 01's subclasses the helpers their docstrings name (``_reallocate``, ``_slot``...).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rule:
    defines: tuple[str, ...]
    forbid: tuple[str, ...] = ()
    restrict: tuple[tuple[str, str], ...] = ()
    instead: str = ""


C = "course.containers"
TENSOR = ("course.tensor.*",)
# Lesson 03's operators: the reference ops and everything that calls them for you.
OPS = ("course.ops.*", "course.module.*", "course.runtime.*", "course.providers.*",
       "kernels.conv_im2col.*", "kernels.softmax.*", "kernels.matmul_naive.*")
KERNELS = ("kernels.elementwise.*", "kernels.reduce.*", "kernels.matmul_naive:matmul_naive_kernel",
           "kernels.matmul_naive:matmul_naive", "kernels.matmul_naive:run_matmul",
           "kernels.matmul_tiled.*", "kernels.matmul_padded.*", "kernels.matmul_regblock.*",
           "kernels.transpose.*", "kernels.softmax.*", "kernels.conv_im2col.*", "kernels.scan.*",
           "kernels.histogram.*", "kernels.occupancy.*")
IR = ("course.ir.*", "course.runtime.*", "course.providers.*")
NO_TRANSPOSE = "build the permuted view from strides (np.lib.stride_tricks.as_strided) and copy it"
NO_FP16 = "astype(np.float16) is the answer key: build the bits field by field"
# A "predict first" exercise returns numbers worked out on paper: no library may compute them.
PAPER = "a prediction is worked out on paper: return the numbers themselves"


def _predict(*names: str) -> tuple[tuple[str, str], ...]:
    return tuple((n, PAPER) for n in ("np", "numpy", "course", "onnx", "kernels", "ml_dtypes") + names)

RULES: dict[str, dict[str, Rule]] = {
    "00_welcome": {
        "cuda_lessons": Rule(("cuda_lessons",)),
        "blocks_needed": Rule(("blocks_needed",), restrict=(("np.ceil", "use integers only"),
                                                            ("math.ceil", "use integers only"))),
        "broadcast_shape": Rule(("broadcast_shape",), forbid=("numpy.lib._stride_tricks_impl:broadcast_shapes",
                                                             "course.tensor.*"),
                                instead="apply the rule dimension by dimension"),
    },
    "01_containers": {
        "vector_push_back": Rule(("MyVector.push_back",),
                                 forbid=(f"{C}:Vector.push_back", f"{C}:Vector.insert"),
                                 instead="grow with self._reallocate and write the slot yourself"),
        "advance_distance": Rule(("my_advance", "my_distance"),
                                 forbid=(f"{C}:advance", f"{C}:distance", f"{C}:next_", f"{C}:prev_"),
                                 instead="dispatch on it.iterator_category and step or jump yourself"),
        "deque_ring": Rule(("MyDeque.push_front", "MyDeque.pop_back"),
                           forbid=(f"{C}:Deque.push_front", f"{C}:Deque.pop_back"),
                           instead="move self._head (wrapping) and use self._slot / self._grow"),
        "list_splice": Rule(("MyList.insert", "MyList.splice"),
                            forbid=(f"{C}:List.insert", f"{C}:List.splice"),
                            instead="relink the nodes with link(a, b)"),
        "heap": Rule(("MyPriorityQueue._sift_up", "MyPriorityQueue._sift_down"),
                     forbid=(f"{C}:PriorityQueue._sift_up", f"{C}:PriorityQueue._sift_down"),
                     restrict=(("heapq", "order the heap with self.compare only"),),
                     instead="swap with the parent / the better child while self.compare says so"),
        "avl_rebalance": Rule(("MyAVLTree.rotate_left", "MyAVLTree.rebalance"),
                              forbid=(f"{C}:AVLTree.rotate_left", f"{C}:AVLTree.rebalance",
                                      f"{C}.avl:AVLTree._retrace"),
                              instead="relink the nodes, fix parents and heights yourself "
                                      "(rotate_right and the height helpers are allowed)"),
        "tree_bounds": Rule(("tree_lower_bound", "tree_upper_bound"),
                            forbid=(f"{C}:AVLTree.lower_bound", f"{C}:AVLTree.upper_bound",
                                    f"{C}:AVLTree.find", f"{C}:lower_bound", f"{C}:upper_bound",
                                    f"{C}:binary_search", f"{C}.ordered.*"),
                            instead="walk down from tree.root once, remembering the best node"),
        "remove_if": Rule(("my_remove_if",), forbid=(f"{C}:remove_if", f"{C}:remove"),
                          instead="keep an output iterator and write the kept values through it"),
        "pool_allocator": Rule(("MyPool.allocate", "MyPool.free"),
                               forbid=(f"{C}:PoolAllocator.allocate", f"{C}:PoolAllocator.free"),
                               instead="pop and push the free list (self._head, self._next_free)"),
    },
    "02_tensors": {
        "row_major_strides": Rule(("row_major_strides",), TENSOR, instead="multiply the sizes from the right"),
        "unravel": Rule(("unravel",), TENSOR, restrict=(("np.unravel_index", "divide by the sizes yourself"),),
                        instead="divide by the sizes from the right"),
        "predict_view": Rule(("predicted_view",), TENSOR, restrict=_predict(), instead=PAPER),
        "view_reshape": Rule(("view_reshape",), TENSOR, restrict=(("np.reshape", "compute the strides"),
                                                                  (".reshape", "compute the strides")),
                             instead="group the axes into contiguous chunks"),
        "broadcast_shape": Rule(("broadcast_shape",), TENSOR + ("numpy.lib._stride_tricks_impl:broadcast_shapes",),
                                restrict=(("np.broadcast_shapes", "apply the rule yourself"),
                                          ("np.broadcast", "apply the rule yourself")),
                                instead="align on the right and compare dimension by dimension"),
        "expand_strides": Rule(("expand_strides",), TENSOR + ("numpy.lib._stride_tricks_impl:broadcast_to",),
                               restrict=(("np.broadcast_to", "compute the strides yourself"),),
                               instead="a stretched axis gets stride 0"),
        "predict_nhwc": Rule(("predicted_nhwc_strides",), TENSOR, restrict=_predict(), instead=PAPER),
        "permute_copy": Rule(("permute_copy",), TENSOR,
                             restrict=tuple((n, NO_TRANSPOSE) for n in
                                            (".transpose", ".T", ".mT", ".swapaxes", ".moveaxis", ".rollaxis",
                                             ".permute_dims", ".einsum", "transpose", "moveaxis"))),
        "predict_bf16": Rule(("predicted_bf16_bits",), TENSOR, restrict=_predict(), instead=PAPER),
        "bf16_bits": Rule(("bf16_bits",), TENSOR,
                          restrict=tuple((n, "round the uint32 bits yourself") for n in
                                         (".bfloat16", "'bfloat16'", "ml_dtypes", "bfloat16"))),
        "f16_bits": Rule(("f16_bits",), TENSOR,
                         restrict=tuple((n, NO_FP16) for n in
                                        (".float16", ".half", "'float16'", "'half'", "'f2'", "'<f2'", "'e'",
                                         "float16"))),
        "align_up": Rule(("align_up",), TENSOR, instead="round up with integer division"),
    },
    "03_operators": {
        "predict_tiles": Rule(("predicted_tile_products",), OPS, restrict=_predict("matmul_blocked"), instead=PAPER),
        "matmul_blocked": Rule(("matmul_blocked",), OPS, instead="loop over tiles and multiply tile by tile"),
        "conv_output_size": Rule(("conv_output_size",), OPS + ("kernels.conv_im2col:conv_out_size",),
                                 instead="use the formula above"),
        "predict_im2col": Rule(("predicted_im2col",), OPS, restrict=_predict("im2col", "conv_output_size"),
                               instead=PAPER),
        "im2col": Rule(("im2col",), OPS, instead="gather the patches with slices of the padded input"),
        "conv2d": Rule(("conv2d",), OPS, instead="use your im2col and one GEMM per group"),
        "pool2d": Rule(("pool2d",), OPS, instead="pad, then reduce the kh x kw shifted windows"),
        "batchnorm_inference": Rule(("batchnorm_inference",), OPS, instead="scale * (x - mean) / sqrt(var + eps) + bias"),
        "softmax": Rule(("softmax",), OPS, instead="subtract the max, exponentiate, normalise"),
        "predict_bound": Rule(("predicted_memory_bound",), OPS + ("course.bench.*",),
                              restrict=_predict("conv2d_cost"), instead=PAPER),
        "conv2d_cost": Rule(("conv2d_cost",), OPS + ("course.bench.*",), instead="count from the shapes"),
        "conv_bn_relu": Rule(("ConvBNReLU.__init__", "ConvBNReLU.forward"), ("course.module:SmallCNN.__init__",),
                             instead="register conv, bn and act yourself"),
    },
    "04_cuda_model": {
        "add_kernel": Rule(("add_kernel", "add_on_device"), KERNELS, instead="write and launch your own kernel"),
        "bias_relu_2d": Rule(("bias_relu_kernel",), KERNELS, instead="write your own kernel"),
        "grid_stride": Rule(("saxpy_kernel",), KERNELS, instead="write your own grid-stride loop"),
        "map_zip": Rule(("make_broadcast_zip",), KERNELS, instead="write your own zip kernel"),
        "block_reduce": Rule(("block_sum_kernel", "device_sum"), KERNELS, instead="write your own reduction"),
        "predict_scan": Rule(("predicted_scan_additions",), KERNELS, restrict=_predict(), instead=PAPER),
        "scan": Rule(("scan_block_kernel", "device_scan"), KERNELS, restrict=(("np.cumsum", "scan on the device"),
                                                                              (".cumsum", "scan on the device")),
                     instead="write your own Hillis–Steele block scan"),
        "histogram": Rule(("histogram_kernel",), KERNELS, instead="write your own privatised histogram"),
        "pipeline": Rule(("chunk_timeline",), KERNELS, instead="compute the start and end times yourself"),
        "traffic": Rule(("gather_sectors",), KERNELS + ("kernels.trace.analysis:sector_count",),
                        instead="count the 32-byte sectors yourself"),
        "predict_occupancy": Rule(("predicted_occupancy",), KERNELS, restrict=_predict("sm_occupancy"), instead=PAPER),
        "occupancy": Rule(("sm_occupancy",), KERNELS, instead="apply the four limits to the SM's fields"),
    },
    "05_shared_memory": {
        "matmul_naive": Rule(("matmul_naive_kernel",), KERNELS, instead="write your own kernel"),
        "tiled_loads": Rule(("tiled_loads",), KERNELS + ("course.viz.tiles.*",), instead="count the tile loads yourself"),
        "matmul_tiled": Rule(("matmul_tiled_kernel",), KERNELS, instead="write your own tiled kernel"),
        "predict_fp64_conflict": Rule(("predicted_fp64_conflict",), KERNELS + ("course.viz.banks.*",),
                                      restrict=_predict("bank_map", "conflict_degree"), instead=PAPER),
        "conflict_degree": Rule(("conflict_degree",), KERNELS + ("kernels.trace.analysis:bank_cost", "course.viz.banks.*",
                                                                 "course.viz.warps.*"),
                                instead="count the distinct words per bank yourself"),
        "transpose_padded": Rule(("transpose_kernel",), KERNELS, instead="write your own shared-memory transpose"),
        "softmax": Rule(("softmax_kernel",), KERNELS, instead="write your own online-softmax kernel"),
        "predict_owner": Rule(("predicted_owner",), KERNELS + ("course.viz.tiles.*",),
                              restrict=_predict("micro_tile_owner"), instead=PAPER),
        "regblock": Rule(("matmul_regblock_kernel",), KERNELS, instead="write your own register-blocked kernel"),
        "roofline": Rule(("roofline_point",), KERNELS, instead="use the roofline formula"),
    },
    "06_graph_ir": {
        "predict_order": Rule(("predicted_orders",), IR, restrict=_predict("topo_order"), instead=PAPER),
        "topo_order": Rule(("topo_order",), IR, instead="Kahn's algorithm over the dict nodes"),
        "find_cycle": Rule(("find_cycle",), IR, instead="a depth-first search with three colours"),
        "predict_shapes": Rule(("predicted_shapes",), IR + ("course.ops.*", "onnx.shape_inference.*"),
                               restrict=_predict("conv_output_shape", "reshape_output_shape", "gemm_output_shape"),
                               instead=PAPER),
        "conv_shape": Rule(("conv_output_shape",), IR + ("course.ops.*", "onnx.shape_inference.*"),
                           instead="apply the output-size formula per axis"),
        "reshape_shape": Rule(("reshape_output_shape",), IR + ("course.ops.*", "onnx.shape_inference.*"),
                              restrict=(("np.reshape", "resolve 0 and -1 yourself"),
                                        (".reshape", "resolve 0 and -1 yourself")),
                              instead="resolve 0 and -1 yourself"),
        "gemm_shape": Rule(("gemm_output_shape",), IR + ("course.ops.*", "onnx.shape_inference.*"),
                           instead="apply transA/transB and check the bias broadcasts"),
        "import_model": Rule(("convert_attribute", "import_model"), IR + ("onnx.helper:get_attribute_value",),
                             instead="switch on attr.type for an attribute and walk model.graph yourself"),
        "run_graph": Rule(("run_graph",), IR + ("onnx.reference.*",),
                          instead="run the nodes in order with lookup(op).compute"),
        "export_model": Rule(("export_model",), IR, instead="build the model with onnx.helper"),
        "predict_trace": Rule(("predicted_trace",), IR + ("course.module.*",),
                              restrict=_predict("trace_module", "trace_onnx", "trace", "record", "F", "Tiny",
                                                "MiniTracer"), instead=PAPER),
        "record": Rule(("record",), ("course.ir.trace:Tracer.handle", "course.ir.trace:trace",
                                     "course.ir.trace:trace_onnx", "course.runtime.*", "course.providers.*"),
                       instead="name the inputs, run F.run_op and append the node yourself"),
        "unroll": Rule(("unroll",), IR, instead="copy the cell's nodes once per step, renaming values"),
        "batch_symbolic": Rule(("make_batch_symbolic",), IR, instead="set dim_param on the batch dimensions"),
    },
}


def exercise_number(lesson: str, exercise: str) -> int:
    """1-based position of ``exercise`` in its lesson (the order of the answer cells)."""
    return list(RULES[lesson]).index(exercise) + 1


# Lessons 07 onward: one statement each, ``RULES["NN_name"] = {...}``, appended below in lesson order.
# Lesson 07: the learner writes passes on the IR, so the IR stays usable (course.ir.*, the helpers of
# course.passes.base, run_node); the course's own pass of each exercise, the managers and the
# session that would run them are not.
_RUNNERS = ("course.passes.pipeline.*", "course.passes.base:PassManager.__call__",
            "course.passes.base:PassManager._run_one", "course.runtime.*", "course.providers.*")
_PASSES = _RUNNERS + ("course.passes.base:Pass.__call__",)  # calling any library Pass object
RULES["07_graph_passes"] = {
    "dead_code": Rule(("eliminate_dead_code",), _PASSES + ("course.passes.eliminate_dead_code.*",
                                                           "course.passes.base:drop_unused_initializers"),
                      instead="walk graph.nodes backwards and remove nodes whose outputs nothing needs"),
    "fold_constants": Rule(("fold_constants",), _PASSES + ("course.passes.fold_constants.*",),
                           instead="check each node's inputs with constant(), compute it with run_node"),
    "cse": Rule(("eliminate_common_subexpressions",),
                _PASSES + ("course.passes.eliminate_common_subexpressions.*",),
                instead="key each node by op, attributes and input ids in a dict"),
    "rules": Rule(("neutral_element", "transpose_pair", "dropout_inference"),
                  _PASSES + ("course.passes.simplify_algebra.*", "course.passes.eliminate_identity.*"),
                  restrict=(("RULES", "write the rules yourself, not the course's table"),
                            (".RULES", "write the rules yourself, not the course's table")),
                  instead="look at the node's inputs and return x, a new node's output, or None"),
    # the course's rules stay callable (the tests hand them to your driver); its driver does not
    "simplify": Rule(("simplify",), _PASSES + ("course.passes.simplify_algebra:SimplifyAlgebra.call",
                                               "course.passes.simplify_algebra:SimplifyAlgebra.apply",
                                               "course.passes.base:forward",
                                               "course.passes.eliminate_identity:EliminateIdentity.call",
                                               "course.passes.eliminate_identity:EliminateIdentity.rewrite"),
                     instead="insert, redirect (take_over for graph outputs) and clean up yourself"),
    "sink_transposes": Rule(("sink_transposes",), _PASSES + ("course.passes.sink_transposes.*",),
                            instead="build the moved op and the sunk Transpose with Node(...) yourself"),
    "pass_manager": Rule(("MyPassManager.call",), _RUNNERS,
                         instead="loop over rounds and passes yourself, verifying and recording each run"),
}

# Lesson 09: the learner's planner may use lesson 01's containers, never the course's planner.
RULES["09_memory_planning"] = {
    "tensor_bytes": Rule(("tensor_bytes",), ("course.memory.*", "course.tensor.align.*", "course.runtime.*",
                                             "course.providers.*"),
                         instead="multiply the element count by the item size and round up yourself"),
    "liveness": Rule(("liveness",), ("course.memory.*", "course.runtime.*", "course.providers.*"),
                     instead="walk the steps once, noting each tensor's first write and last read"),
    "lower_bound": Rule(("live_bytes", "lower_bound"), ("course.memory.*", "course.runtime.*", "course.providers.*"),
                        instead="add each tensor's bytes to every step of its interval"),
    "naive": Rule(("place_naive",), ("course.memory.*", "course.runtime.*", "course.providers.*"),
                  instead="give the tensors back-to-back offsets in order of first step"),
    "greedy_by_size": Rule(("place_greedy_by_size",), ("course.memory.*", "course.runtime.*", "course.providers.*"),
                           instead="largest first, each into the smallest gap among the placed tensors it meets"),
    "inplace": Rule(("merge_inplace",), ("course.memory.*", "course.runtime.*", "course.providers.*"),
                    instead="check the rule per candidate and fold dst's interval into its root's"),
    "validate": Rule(("validate_placement",), ("course.memory.*", "course.runtime.*", "course.providers.*"),
                     instead="check alignment, then every pair of tensors alive at one step"),
    "double_cursor": Rule(("DoubleCursor.__init__", "DoubleCursor.low", "DoubleCursor.high"),
                          ("course.memory.*", "course.tensor.align.*", "course.runtime.*", "course.providers.*"),
                          instead="move self.bottom up and self.top down by aligned sizes yourself"),
}
RULES["08_fusion_layout"] = {
    "fold_conv_bn": Rule(("fold_conv_bn",), ("course.passes.fold_batchnorm.*", "course.passes.batchnorm_to_mul_add.*",
                                             "course.quant.*", "course.passes.base:Pass.__call__",
                                             "course.passes.base:PassManager.__call__"),
                         instead="a = gamma / sqrt(running_var + eps); W' = a W, B' = a (B - running_mean) + beta"),
    "conv_activation": Rule(("ConvActivationFusion.match", "ConvActivationFusion.check", "ConvActivationFusion.rewrite"),
                            ("course.passes.fuse_conv_activation.*", "course.passes.fuse_conv_add.*",
                             "course.passes.pipeline.*", "course.passes.base:PassManager.__call__"),
                            instead="match the pair, check its readers and bounds, build the FusedConv yourself"),
    "siblings": Rule(("sibling_key", "fuse_siblings"), ("course.passes.fuse_sibling_convs.*", "course.passes.pipeline.*",
                                                         "course.passes.base:PassManager.__call__"),
                     instead="concatenate the filters and biases and add the Split yourself"),
    "op_expression": Rule(("op_expression",), ("kernels.fused_elementwise.*",), instead="write the expression of each op yourself"),
    "kernel_source": Rule(("kernel_source",), ("kernels.fused_elementwise.*",),
                          instead="write the kernel's lines yourself: loads, steps, one store"),
    "wrap_nhwc": Rule(("wrap_nhwc",), ("course.passes.to_nhwc.*",), instead="insert the two Transposes and the course.nhwc node yourself"),
    "cancel_transposes": Rule(("cancel_transposes",), ("course.passes.to_nhwc.*", "course.passes.simplify_algebra.*",
                                                       "course.passes.pipeline.*"),
                              instead="compose the two permutations and bypass the pair yourself"),
}

# Lesson 10: the quantization library, the integer reference ops and onnxruntime's quantizer.
_QUANT = ("course.quant.*", "course.passes.qdq_to_integer.*", "onnxruntime.quantization.*", "course.runtime.*",
          "course.providers.*")
RULES["10_quantization"] = {
    "scale_zero_point": Rule(("scale_zero_point",), _QUANT,
                             instead="widen the range to hold 0, then scale = range / levels and z = round(qmin - rmin / scale)"),
    "quantize_linear": Rule(("quantize_linear", "dequantize_linear"),
                            _QUANT + ("course.ops.quant_linear.*", "course.ops.quant_dequantize.*", "onnx.reference.*"),
                            instead="np.rint(x / scale) + zero_point, then clip to the dtype's range"),
    "quantize_weight": Rule(("quantize_weight",), _QUANT + ("course.ops.quant_linear.*", "onnx.reference.*"),
                            instead="take min and max over the other axes and use your scale_zero_point and quantize_linear"),
    "qlinear_matmul": Rule(("matmul_int32", "qlinear_matmul"),
                           _QUANT + ("course.ops.quant_integer.*", "course.ops.quant_qlinear.*", "onnx.reference.*"),
                           instead="subtract the zero points in int32, multiply, then requantize with one float32 multiplier"),
    "minmax_calibrator": Rule(("MinMaxCalibrator.collect", "MinMaxCalibrator.compute_ranges"), _QUANT,
                              instead="keep a running (min, max) per tensor name"),
    "entropy_threshold": Rule(("entropy_threshold",), _QUANT,
                              instead="loop over the candidate bin counts and compare kl_divergence(P, Q)"),
    "insert_qdq": Rule(("insert_qdq",), _QUANT,
                       instead="make the two nodes, insert them after the producer and set_input on the old readers"),
    "layer_sensitivity": Rule(("sqnr_db", "layer_sensitivity"),
                              ("course.quant.sensitivity:sensitivity", "course.quant.sensitivity:mixed_precision",
                               "course.quant.metrics:sqnr", "onnxruntime.quantization.*"),
                              instead="run the float model once, then each one-layer model, and compare with your sqnr_db"),
    "fake_quant": Rule(("FakeQuant.forward", "FakeQuant.backward"), _QUANT,
                       instead="round, clip and rescale in forward; mask the gradient in backward"),
}

# Lesson 11: pruning and distillation; the library and the engines that would run it for you.
RULES["11_pruning"] = {
    "magnitude_mask": Rule(("magnitude_mask",), ("course.prune.*", "course.runtime.*", "course.providers.*"),
                           instead="a stable argsort of |w|, then set the first round(s * n) to False"),
    "mask_2_4": Rule(("mask_2_4",), ("course.prune.*", "course.runtime.*", "course.providers.*"),
                     instead="bring the input axis last, reshape into groups of four and keep the two largest |w| of each"),
    "csr_encode": Rule(("csr_encode",), ("course.prune.*", "course.runtime.*", "course.providers.*"),
                       instead="np.nonzero gives rows and columns in row-major order; row_ptr is 0 then the cumulative row counts"),
    "l1_filter_ranking": Rule(("l1_filter_ranking",), ("course.prune.*", "course.runtime.*", "course.providers.*"),
                              instead="sum |W| over every axis but 0, then a stable argsort"),
    "prune_conv_channels": Rule(("prune_conv_channels",), ("course.prune.*", "course.runtime.*", "course.providers.*"),
                                instead="slice the conv's W and bias on axis 0, the BN's four vectors, then the next reader's input channels"),
    "finetune_step": Rule(("finetune_step",), ("course.prune.*", "course.runtime.*", "course.providers.*"),
                          instead="forward in training mode, loss, backward in reverse, opt.step(), then multiply each W by its mask"),
    "distillation_loss": Rule(("distillation_loss",), ("course.prune.*", "course.runtime.*", "course.providers.*"),
                              instead="log-softmax with the maximum subtracted; KL at temperature T times T^2, plus the cross-entropy"),
}

# Lesson 12: the runtime -- partitioning, copies, tactics, engine files, profiles -- and the reference Gemm.
_RUN = "course.runtime"
RULES["12_runtime"] = {
    "dispatch": Rule(("dispatch",), (f"{_RUN}.partition:partition", f"{_RUN}.session.*", f"{_RUN}.engine.*"),
                     instead="ask each provider's claims(spec) in list order; append ReferenceExecutionProvider() when missing"),
    "place_copies": Rule(("place_copies",), (f"{_RUN}.copies.*", f"{_RUN}.partition.*", f"{_RUN}.session.*",
                                             f"{_RUN}.engine.*"),
                         instead="record where each value lives, walk the nodes and remember the copies already made"),
    "rms_norm": Rule(("RMSNorm.infer_dtype", "RMSNorm.infer_shape", "rms_norm", "rms_norm_provider"),
                     ("course.ops.base:Op.infer_dtype", "course.ops.base:Op.infer_shape", "course.ops.base:broadcast_shapes",
                      "onnx.reference.*"),
                     instead="check X's and scale's dtypes and shapes yourself; compute the mean of X^2 over the last axis"),
    "choose_tactic": Rule(("choose_tactic",), (f"{_RUN}.tactics.*",),
                          instead="one checking call, warm-ups, then clock() around each timed call and statistics.median"),
    "engine_file": Rule(("pack_engine", "unpack_engine"), (f"{_RUN}.engine_file.*", f"{_RUN}.engine.*"),
                        instead="PREFIX.pack / unpack_from, json.dumps(header, indent=1, sort_keys=True) and hashlib.sha256"),
    "profile_check": Rule(("check_in_profile", "arena_dims"), (f"{_RUN}.profiles.*", f"{_RUN}.engine.*"),
                          instead="compare each dim of each profiled feed with min and max; take max for each symbolic dim"),
    "capstone": Rule(("my_gemm", "build_my_engine"), ("course.ops.gemm.*", "course.ops.fused_gemm.*", "course.ops.matmul.*",
                                                      "course.providers.cpu.gemm.*", "course.providers.cpu.blas.*",
                                                      "onnx.reference.*"),
                     instead="transpose when a flag says so, multiply with @, scale by alpha and add beta * C"),
}
