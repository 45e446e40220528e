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
           "kernels.transpose.*", "kernels.softmax.*", "kernels.conv_im2col.*")
IR = ("course.ir.*", "course.runtime.*", "course.providers.*")
NO_TRANSPOSE = "build the permuted view from strides (np.lib.stride_tricks.as_strided) and copy it"
NO_FP16 = "astype(np.float16) is the answer key: build the bits field by field"

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
        "permute_copy": Rule(("permute_copy",), TENSOR,
                             restrict=tuple((n, NO_TRANSPOSE) for n in
                                            (".transpose", ".T", ".mT", ".swapaxes", ".moveaxis", ".rollaxis",
                                             ".permute_dims", ".einsum", "transpose", "moveaxis"))),
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
        "matmul_blocked": Rule(("matmul_blocked",), OPS, instead="loop over tiles and multiply tile by tile"),
        "conv_output_size": Rule(("conv_output_size",), OPS + ("kernels.conv_im2col:conv_out_size",),
                                 instead="use the formula above"),
        "im2col": Rule(("im2col",), OPS, instead="gather the patches with slices of the padded input"),
        "conv2d": Rule(("conv2d",), OPS, instead="use your im2col and one GEMM per group"),
        "pool2d": Rule(("pool2d",), OPS, instead="pad, then reduce the kh x kw shifted windows"),
        "batchnorm_inference": Rule(("batchnorm_inference",), OPS, instead="scale * (x - mean) / sqrt(var + eps) + bias"),
        "softmax": Rule(("softmax",), OPS, instead="subtract the max, exponentiate, normalise"),
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
        "pipeline": Rule(("chunk_timeline",), KERNELS, instead="compute the start and end times yourself"),
        "traffic": Rule(("gather_sectors",), KERNELS + ("kernels.trace.analysis:sector_count",),
                        instead="count the 32-byte sectors yourself"),
    },
    "05_shared_memory": {
        "matmul_naive": Rule(("matmul_naive_kernel",), KERNELS, instead="write your own kernel"),
        "tiled_loads": Rule(("tiled_loads",), KERNELS, instead="count the tile loads yourself"),
        "matmul_tiled": Rule(("matmul_tiled_kernel",), KERNELS, instead="write your own tiled kernel"),
        "conflict_degree": Rule(("conflict_degree",), KERNELS + ("kernels.trace.analysis:bank_cost",),
                                instead="count the distinct words per bank yourself"),
        "transpose_padded": Rule(("transpose_kernel",), KERNELS, instead="write your own shared-memory transpose"),
        "regblock": Rule(("matmul_regblock_kernel",), KERNELS, instead="write your own register-blocked kernel"),
        "roofline": Rule(("roofline_point",), KERNELS, instead="use the roofline formula"),
    },
    "06_graph_ir": {
        "topo_order": Rule(("topo_order",), IR, instead="Kahn's algorithm over the dict nodes"),
        "find_cycle": Rule(("find_cycle",), IR, instead="a depth-first search with three colours"),
        "conv_shape": Rule(("conv_output_shape",), IR + ("course.ops.*", "onnx.shape_inference.*"),
                           instead="apply the output-size formula per axis"),
        "reshape_shape": Rule(("reshape_output_shape",), IR + ("course.ops.*", "onnx.shape_inference.*"),
                              restrict=(("np.reshape", "resolve 0 and -1 yourself"),
                                        (".reshape", "resolve 0 and -1 yourself")),
                              instead="resolve 0 and -1 yourself"),
        "gemm_shape": Rule(("gemm_output_shape",), IR + ("course.ops.*", "onnx.shape_inference.*"),
                           instead="apply transA/transB and check the bias broadcasts"),
        "convert_attribute": Rule(("convert_attribute",), IR + ("onnx.helper:get_attribute_value",),
                                  instead="switch on attr.type and read the matching field"),
        "import_model": Rule(("import_model",), IR, instead="walk model.graph yourself"),
        "run_graph": Rule(("run_graph",), IR + ("onnx.reference.*",),
                          instead="run the nodes in order with lookup(op).compute"),
        "export_model": Rule(("export_model",), IR, instead="build the model with onnx.helper"),
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
