"""Identity labels as pure data, one module per job.

``model`` (templates and the data a label shows), ``payloads`` (what barcodes encode), ``scans``
(reading a scanned label back), ``layout`` (text fitting and barcode sizing), ``checks`` (the
rules a template must follow) and ``reports`` (batch report content, print receipts). Template
files are read by ``station.adapters.labels.templates``.
"""
