"""Each layer kind's PyTorch module (``modules.py``), which the kind's ``to_torch`` builds, on channels-first
tensors (``layout.py``). PyTorch is the ``torch`` extra: the layers import these modules inside ``to_torch``
only, and this package's ``__init__`` imports no PyTorch. The training backend is specforge.training.torch.
"""
