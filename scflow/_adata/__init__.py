"""What the AnnData face shares between its tools (``scflow.tl``) and its plots
(``scflow.pl``): the colours of categories as scanpy gives them
(:mod:`~scflow._adata.palette`). Private: the public face is ``tl`` and ``pl``."""
