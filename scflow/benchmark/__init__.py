"""What ``scflow benchmark`` runs on AnnData (above the AnnData face ``scflow.tl``): the
report of the protocols (:mod:`~scflow.benchmark.report`: tables, JSON, figures,
``--append``) and the fate benchmark against LARRY's lineage truth
(:mod:`~scflow.benchmark.larry`). Both are imported from their modules.
"""
