"""report stage: figures (PNG bytes), one self-contained HTML report, and evaluation + report
of a run (``report_run``, ``report_zeroshot``: what ``mfe evaluate`` calls)."""

from mouse_facial_expressions.report.html import write_report

__all__ = ["write_report", "report_run", "report_predictions", "report_zeroshot"]


def __getattr__(name):  # lazy: the run functions import torch
    if name in ("report_run", "report_predictions", "report_zeroshot", "make_figures"):
        from mouse_facial_expressions.report import runs

        return getattr(runs, name)
    raise AttributeError(name)
