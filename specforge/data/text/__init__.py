"""Text data: documents turned into token ids or bag-of-words vectors by a vocabulary learned on the training
split (``vectorize.py``, Keras' ``TextVectorization``), read from a folder of ``.txt`` files with one sub-folder
per class (``folder.py``), and described for ``data info`` (``info.py``)."""
