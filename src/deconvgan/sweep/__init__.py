"""``deconvgan sweep``: train every combination of a few config values over seeds, evaluate, report.

A sweep directory (``sweeps/00003-mnist-28-kernel_size-g_depth/``) holds ``sweep.json`` (the plan:
everything needed to continue it), ``base.yaml`` (the base config as it was when the sweep started),
one folder per row (a combination and a seed: the training run, its evaluation and ``result.json``)
and the report: ``results.csv``, ``report.md``, ``report.html`` and ``plots/``.

Modules: :mod:`~deconvgan.sweep.grid` (the ``--vary`` axes and row names), :mod:`~deconvgan.sweep.plan`
(the plan, validated by building every row's config), :mod:`~deconvgan.sweep.runner` (training and
evaluation subprocesses, resumable), :mod:`~deconvgan.sweep.cost` (parameters, FLOPs, speed),
:mod:`~deconvgan.sweep.report` and :mod:`~deconvgan.sweep.plots` (the report), and
:mod:`~deconvgan.sweep.command` (the command line).
"""
