"""``specforge serve``: an exported model over HTTP on the Open Inference Protocol (KServe v2 REST).

Kept free of heavy imports: the ASGI stack (``pip install 'specforge[serve]'``) is imported when serving.
"""
