"""What the AnnData face shares between its tools (``scflow.tl``), its plots
(``scflow.pl``) and the benchmark report: reading a time course and representations from an
AnnData (:mod:`~scflow._adata.access`), the fit's record in ``uns`` and the model it holds
(:mod:`~scflow._adata.store`), times in the user's units (:mod:`~scflow._adata.times`,
:mod:`~scflow._adata.time_labels`), the colours of categories as scanpy gives them
(:mod:`~scflow._adata.palette`). Private: the public face is ``tl`` and ``pl``; plots read
what the tools wrote through these, never the tools' own modules.
"""
