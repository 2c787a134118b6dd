"""Run reports: one self-contained HTML page per run (``mmseq report``) and results charts.

Submodules: :mod:`~mmseq.report.build` (the page), :mod:`~mmseq.report.figures` (matplotlib, Agg),
:mod:`~mmseq.report.html` (markup), :mod:`~mmseq.report.topic_map` (the PCA topic map),
:mod:`~mmseq.report.results_chart` (bar charts of results tables). Importing this package loads
none of them.
"""
