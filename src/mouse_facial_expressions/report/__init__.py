"""report stage: figures (PNG bytes) and one self-contained HTML report."""

from mouse_facial_expressions.report.html import write_report

__all__ = ["write_report"]
