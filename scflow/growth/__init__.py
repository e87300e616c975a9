"""Growth: a prior from genes (:mod:`~scflow.growth.prior`) and the training data of
growth-aware methods (:mod:`~scflow.growth.data`: pairs and per-cell growth targets from
semi-relaxed plans, global or minibatch).

The coupling is :class:`scflow.couplings.GrowthOT`, the method
:mod:`scflow.methods.uotcfm`, the count-mix null :func:`scflow.references.static_mix_interpolant`.
"""
