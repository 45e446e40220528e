"""Pruning and distillation: masks, sparse storage, channel surgery on ONNX, fine-tuning.

``masks``: magnitude (per layer, global), 2:4 along the input dimension, L1 filter ranking and
channel choice. ``storage``: CSR and the 2:4 compressed form, their true byte counts and sparse
products. ``surgery``: removing Conv output channels (its BN, the next layer's input channels,
through residual Adds and channel Concats where legal) from an ONNX model, FLOPs.
``train``: masked fine-tuning, Hinton's distillation loss, network slimming's L1 on BN gammas.
``curves``: accuracy against sparsity per method, before and after a short fine-tune.
Lesson 11 builds these pieces; this is the reference the hidden tests compare with.
"""
from course.prune.curves import METHODS, Budget, CurvePoint, sparsity_curves
from course.prune.masks import (channels_to_keep, filters_to_keep, global_magnitude_masks, is_2_4,
                                keep_count, l1_filter_ranking, magnitude_mask, mask_2_4, sparsity)
from course.prune.storage import (CSR, Sparse24, compress_2_4, csr_encode, csr_matmul, dense_nbytes,
                                  sparse24_matmul, to_csr)
from course.prune.surgery import conv_flops, prune_channels, total_flops, zero_removed_inputs
from course.prune.train import (accuracy, apply_masks, distillation_loss, finetune, finetune_step,
                                l1_gamma_penalty, layer_masks, weight_layers)

__all__ = ["CSR", "METHODS", "Budget", "CurvePoint", "Sparse24", "accuracy", "apply_masks", "channels_to_keep", "compress_2_4", "conv_flops",
           "csr_encode", "csr_matmul", "dense_nbytes", "distillation_loss", "filters_to_keep", "finetune",
           "finetune_step", "global_magnitude_masks", "is_2_4", "keep_count", "l1_filter_ranking",
           "l1_gamma_penalty", "layer_masks", "magnitude_mask", "mask_2_4", "prune_channels",
           "sparse24_matmul", "sparsity", "sparsity_curves", "to_csr", "total_flops", "weight_layers", "zero_removed_inputs"]
