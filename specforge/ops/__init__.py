"""The compute engine the layers call: batch-level numpy kernels, no layer kinds.

``im2col`` (sliding windows, padding, grouped convolution), ``taps`` (convolution as one
product per kernel tap), ``epilogue`` (bias and fused activation on a fresh output),
``parallel`` (a batch split across the cores), ``scratch`` (per-thread buffers reused every
batch), ``memory`` (keeping freed memory for the next batch), ``channels`` (per-channel
arithmetic over whole examples) and ``flat`` (arrays end to end in one buffer, updated at once).
"""
