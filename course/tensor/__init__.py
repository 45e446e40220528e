"""Tensors as (buffer, layout): strides, views, broadcasting, memory formats, narrow floats.

The reference for lesson 02. A tensor is a flat buffer plus a :class:`Layout` (shape, strides
in elements, offset); transposes, slices, broadcasts and many reshapes only change the layout.
"""
from course.tensor.align import (address_of, align_down, align_up, aligned_empty, is_aligned,
                                 is_buffer_aligned, is_power_of_two)
from course.tensor.broadcast import broadcast_shapes, broadcast_strides
from course.tensor.floats import (bfloat16_bits_to_float, bits_to_float, float16_bits_to_float,
                                  float32_fields, float_to_bits, to_bfloat16, to_bfloat16_bits,
                                  to_float16, to_float16_bits)
from course.tensor.formats import (NCHW_TO_NHWC, NHWC_TO_NCHW, nchw_offset, nchw_to_nchwc,
                                   nchw_to_nhwc, nchwc_to_nchw, nhwc_offset, nhwc_strides,
                                   nhwc_to_nchw)
from course.tensor.layout import (Layout, column_major_strides, contiguous_strides,
                                  index_to_offset, is_contiguous, numel, offset_to_index)
from course.tensor.reshape import reshape_strides, resolve_shape
from course.tensor.view import TensorView, as_view, gather_offsets

__all__ = [
    "Layout", "TensorView", "as_view", "gather_offsets", "numel", "contiguous_strides",
    "column_major_strides", "index_to_offset", "offset_to_index", "is_contiguous",
    "reshape_strides", "resolve_shape", "broadcast_shapes", "broadcast_strides",
    "NCHW_TO_NHWC", "NHWC_TO_NCHW", "nchw_offset", "nhwc_offset", "nhwc_strides", "nchw_to_nhwc",
    "nhwc_to_nchw", "nchw_to_nchwc", "nchwc_to_nchw", "float_to_bits", "bits_to_float",
    "float32_fields", "to_bfloat16_bits", "to_bfloat16", "bfloat16_bits_to_float",
    "to_float16_bits", "to_float16", "float16_bits_to_float", "align_up", "align_down",
    "is_aligned", "is_power_of_two", "address_of", "is_buffer_aligned", "aligned_empty",
]
