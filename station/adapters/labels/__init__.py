"""Label adapters: template library, reportlab rendering, ZPL, printers and the batch report PDF."""
