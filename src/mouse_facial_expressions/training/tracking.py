"""MLflow tracking: a parent run per ``mfe train`` call, one nested run per fold.

Only :class:`mlflow.MlflowClient` is used (no global "active run"), so it is safe under
DDP (rank 0 logs) and in notebooks. The per-epoch metrics of a fold go through Lightning's
``MLFlowLogger`` (:func:`epoch_logger`), bound to the fold's run; :class:`Tracker` creates the
runs, nests them and reopens them on resume, which ``MLFlowLogger`` does not do. The default store is SQLite in the project:
``sqlite:///<models>/mlruns.db`` with artifacts in ``<models>/mlartifacts``; any tracking
URI (``http://...``, ``file:...``, ``databricks``) is accepted.

MLflow is an optional extra (``pip install 'mouse-facial-expressions[track]'``). Without it,
:func:`resolve_tracking` turns the default tracking off with one notice, and an explicit
tracking URI (``--tracking_uri``, ``train.tracking_uri``) is an error that names the command.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mouse_facial_expressions.compat import import_torchvision

import_torchvision()

from lightning.pytorch.loggers import MLFlowLogger  # noqa: E402 (imports mlflow only when one is made)

log = logging.getLogger(__name__)

PARENT_TAG = "mlflow.parentRunId"
INSTALL_HINT = "pip install 'mouse-facial-expressions[track]'"
MISSING = f"MLflow tracking needs the optional package mlflow, which is not installed: {INSTALL_HINT}"
_told_missing = False  # the notice that tracking is off is given once per process


def mlflow_available() -> bool:
    """Whether ``import mlflow`` works here."""
    try:
        import mlflow  # noqa: F401
    except ImportError:
        return False
    return True


def _mlflow():
    try:
        import mlflow
        import mlflow.entities  # noqa: F401
    except ImportError:
        raise ImportError(MISSING) from None
    return mlflow


def resolve_tracking(track: bool, tracking_uri: str | None = None) -> bool:
    """Whether to track: ``track`` when MLflow is installed. Without it, the default store
    (no ``tracking_uri``) is turned off with a one-time notice, and an explicit
    ``tracking_uri`` raises :class:`ImportError` naming the install command."""
    global _told_missing
    if not track or mlflow_available():
        return track
    if tracking_uri:
        raise ImportError(f"{MISSING}; or drop the tracking URI ({tracking_uri}) and train untracked "
                          "with --no-tracking")
    if not _told_missing:
        log.warning("MLflow is not installed: training without tracking (the run folder keeps every result; "
                    "for MLflow runs: %s)", INSTALL_HINT)
        _told_missing = True
    return False


def default_tracking_uri(models_dir: str | Path) -> str:
    return f"sqlite:///{Path(models_dir).resolve() / 'mlruns.db'}"


class Tracker:
    """Thin wrapper over ``MlflowClient`` for one experiment.

    Own code where ``MLFlowLogger`` cannot do the job: it starts a run per logger, with no parent,
    and resumes only a run whose id it is given, without setting it running again; here a parent
    run holds one nested run per fold (the ``mlflow.parentRunId`` tag), a reopened run is set
    RUNNING, a deleted one is replaced, and the test results and predictions are logged after
    Lightning is done.

    Args:
        tracking_uri: any MLflow URI.
        experiment: experiment name (created when missing).
        artifact_dir: artifact root for a newly created experiment (local stores).
    """

    def __init__(self, tracking_uri: str, experiment: str = "mfe", artifact_dir: str | Path | None = None):
        mlflow = _mlflow()

        from mouse_facial_expressions._logs import requiet

        requiet()  # mlflow resets its logger on import; its database set-up logs at INFO
        self.client = mlflow.MlflowClient(tracking_uri=tracking_uri)
        self.tracking_uri = tracking_uri
        exp = self.client.get_experiment_by_name(experiment)
        if exp is None:
            loc = Path(artifact_dir).resolve().as_uri() if artifact_dir else None
            self.experiment_id = self.client.create_experiment(experiment, artifact_location=loc)
        else:
            self.experiment_id = exp.experiment_id

    def start_run(self, name: str, params: dict | None = None, parent: str | None = None, run_id: str | None = None) -> str:
        """Start (or reopen, when ``run_id`` exists) a run; returns its id."""
        if run_id:
            try:
                run = self.client.get_run(run_id)
                if run.info.lifecycle_stage == "active":
                    self.client.update_run(run_id, status="RUNNING")
                    return run_id
            except Exception:  # deleted / other store: start a fresh run
                pass
        tags = {"mlflow.runName": name}
        if parent:
            tags[PARENT_TAG] = parent
        run = self.client.create_run(self.experiment_id, tags=tags, run_name=name)
        if params:
            self.log_params(run.info.run_id, params)
        return run.info.run_id

    def log_params(self, run_id: str, params: dict) -> None:
        mlflow = _mlflow()
        items = [mlflow.entities.Param(k, str(v)[:6000]) for k, v in sorted(params.items())]
        try:
            self.client.log_batch(run_id, params=items)
        except Exception as err:  # a reopened run may already hold these params
            log.debug("params not logged again: %s", err)

    def log_metrics(self, run_id: str, metrics: dict, step: int | None = None) -> None:
        for k, v in metrics.items():
            self.client.log_metric(run_id, k, float(v), step=step)

    def set_tags(self, run_id: str, tags: dict) -> None:
        for k, v in tags.items():
            self.client.set_tag(run_id, k, str(v))

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def end_run(self, run_id: str, status: str = "FINISHED") -> None:
        self.client.set_terminated(run_id, status=status)


class _EpochMLFlowLogger(MLFlowLogger):
    """``MLFlowLogger`` for a run that :class:`Tracker` made and ends. Three things differ, each
    to keep the fold runs as they were:

    - step = epoch. Lightning logs epoch metrics at the optimiser-step count and adds the epoch
      as a metric ``epoch``; here that epoch is the step, and no ``epoch`` metric is written.
    - no hyperparameters: the run already holds the fold's training parameters
      (``Tracker.start_run``), and MLflow refuses to change a parameter's value, which the
      module's own hyperparameters (other names, other formatting) would try.
    - no end at the end of ``fit``: the fold logs its test results afterwards and ends the run
      (``Tracker.end_run``).
    """

    def log_metrics(self, metrics, step=None) -> None:
        metrics = dict(metrics)
        epoch = metrics.pop("epoch", None)
        if metrics:
            super().log_metrics(metrics, step=int(epoch) if epoch is not None else step)

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def finalize(self, status: str = "success") -> None:
        pass


def epoch_logger(tracking_uri: str, run_id: str | None) -> MLFlowLogger | None:
    """A Lightning logger writing a fold's epoch metrics to the existing run ``run_id``, step =
    epoch, for ``pl.Trainer(logger=...)``; None without a run (untracked, or not rank 0).

    Every metric the module logs per epoch lands there under its own name (``train_loss``,
    ``train_acc``, ``val_loss``, ``val_acc``, ``val_select``, ``lr``), validation metrics only
    in the epochs that were validated.
    """
    if not run_id:
        return None
    _mlflow()  # the install hint, not Lightning's error, when mlflow is missing
    from mouse_facial_expressions._logs import requiet

    requiet()
    return _EpochMLFlowLogger(tracking_uri=tracking_uri, run_id=run_id)
