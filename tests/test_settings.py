"""One configuration model (issue 31 item 1): mfe.yaml, --config FILE and the flags resolve each
command's settings, in that order of precedence, and every option has a key."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml

from mouse_facial_expressions.cli import build_parser, main
from mouse_facial_expressions.cli._common import command_tree
from mouse_facial_expressions.cli.settings import NOT_SETTINGS, SECTIONS, resolve_args, resolve_train
from mouse_facial_expressions.cli.train import build_entry_parser
from mouse_facial_expressions.config import Config, ConfigError, load_config
from mouse_facial_expressions.settings import SOURCES, TrainConfig, flat_fields
from mouse_facial_expressions.training.params import RECIPES, SEED_DEFAULTS, TrainParams, make_params

MODELS = ("baseline", "advanced", "resup")


def _project(tmp_path: Path, text: str = "") -> Path:
    (tmp_path / "mfe.yaml").write_text(text)
    return tmp_path


def _train(argv: list[str]):
    return resolve_train(build_parser().parse_args(["train", *argv]))


# --- a value written in a file always counts ------------------------------------------------


@pytest.mark.parametrize("model", MODELS)
def test_train_epochs_20_in_mfe_yaml_trains_20_epochs_for_every_model(tmp_path, model):
    project = _project(tmp_path, "train:\n  epochs: 20\n")
    assert make_params(model, load_config(project).train).epochs == 20
    _, params, resolved = _train(["-p", str(project), "--model", model])
    assert params.epochs == 20 and resolved.sources["epochs"] == "mfe.yaml"


@pytest.mark.parametrize("model", MODELS)
def test_a_recipe_value_written_in_mfe_yaml_counts_even_when_it_is_the_recipe_default(tmp_path, model):
    project = _project(tmp_path, "train:\n  advanced:\n    recipe: original\n    sampler: balanced\n")
    params = make_params(model, load_config(project).train)
    assert params.sampler == "balanced" and params.augment_policy == RECIPES["original"]["augment_policy"]


def test_keys_left_out_take_the_model_s_defaults(tmp_path):
    project = _project(tmp_path, "train:\n  epochs: 3\n")
    _, params, resolved = _train(["-p", str(project), "--model", "baseline"])
    assert params.learning_rate == SEED_DEFAULTS["baseline"]["learning_rate"]
    assert resolved.sources["learning_rate"] == "default" and resolved.values["learning_rate"] == 1e-2


def test_null_in_mfe_yaml_means_the_default(tmp_path):
    project = _project(tmp_path, "train:\n  epochs: null\n")
    assert make_params("baseline", load_config(project).train).epochs == SEED_DEFAULTS["baseline"]["epochs"]


def test_flag_wins_over_config_file_wins_over_mfe_yaml(tmp_path):
    project = _project(tmp_path, "train:\n  epochs: 3\n  image_size: 96\n  backbone: resnet18\n")
    (tmp_path / "run.yaml").write_text("train:\n  epochs: 4\n  image_size: 64\n")
    _, params, resolved = _train(["-p", str(project), "--config", str(tmp_path / "run.yaml"), "--epochs", "5"])
    assert (params.epochs, params.image_size, params.backbone) == (5, 64, "resnet18")
    assert [resolved.sources[k] for k in ("epochs", "image_size", "backbone", "num_layers")] == \
        ["flag", "--config", "mfe.yaml", "default"]


def test_a_config_file_may_be_one_flat_mapping(tmp_path):
    (tmp_path / "flat.json").write_text(json.dumps({"epochs": 6, "device": None} | {"model": "resup"}))
    with pytest.raises(ConfigError, match="unknown key 'device'"):  # keys are the section's
        _train(["-p", str(_project(tmp_path)), "--config", str(tmp_path / "flat.json")])
    (tmp_path / "flat.json").write_text(json.dumps({"epochs": 6, "model": "resup"}))
    _, params, _ = _train(["-p", str(tmp_path), "--config", str(tmp_path / "flat.json")])
    assert (params.model, params.epochs) == ("resup", 6)


def test_an_unknown_key_in_a_config_file_is_an_error_naming_file_and_key(tmp_path):
    (tmp_path / "c.yaml").write_text("train:\n  epoch: 4\n")
    with pytest.raises(ConfigError, match=r"c.yaml \(train:\).*\n.*unknown key 'epoch'"):
        _train(["-p", str(_project(tmp_path)), "--config", str(tmp_path / "c.yaml")])


def test_mfe_yaml_device_and_precision_take_the_flags_vocabulary(tmp_path):
    project = _project(tmp_path, "train:\n  accelerator: cuda\n  precision: bf16\n")
    _, params, _ = _train(["-p", str(project)])
    assert (params.accelerator, params.precision) == ("gpu", "bf16-mixed")


@pytest.mark.parametrize("section, argv, key, value", [
    ("predict", ["predict", "v.mp4"], "device", "cpu"),
    ("evaluate", ["evaluate", "RUN"], "bootstrap", 50),
    ("finetune", ["finetune"], "freeze_backbone", True),
    ("extract", ["extract"], "workers", 3),
    ("task", ["task", "make"], "au_tolerance", 0.25),
])
def test_every_command_reads_its_section_of_mfe_yaml_below_its_flags(tmp_path, section, argv, key, value):
    project = _project(tmp_path, yaml.safe_dump({section: {key: value}}))
    args = build_parser().parse_args([*argv, "-p", str(project)])
    resolved = resolve_args(args, section)
    assert getattr(args, key) == value and resolved.sources[key] == "mfe.yaml"
    assert {s for k, s in resolved.sources.items() if k != key} == {"default"}


def test_a_flag_wins_over_mfe_yaml_for_predict(tmp_path):
    project = _project(tmp_path, "predict:\n  device: cpu\n  batch_size: 4\n")
    args = build_parser().parse_args(["predict", "v.mp4", "-p", str(project), "--device", "cuda"])
    resolve_args(args, "predict")
    assert (args.device, args.batch_size, args.backend) == ("cuda", 4, "auto")


def test_predict_without_a_model_anywhere_says_where_to_give_one(tmp_path, capsys):
    assert main(["predict", "v.mp4", "--keypoints", "k", "-p", str(_project(tmp_path))]) == 1
    assert "--model RUN|CKPT is required" in capsys.readouterr().err


def test_help_shows_the_configuration_model_s_default():
    evaluate = {p.prog: p for p in command_tree(build_parser())}["mfe evaluate"]
    assert "(default: 1000)" in " ".join(evaluate.format_help().split())


# --- every option has a key -------------------------------------------------------------------


def _parsers():
    by_prog = {p.prog: p for p in command_tree(build_parser())}
    for command, section in SECTIONS.items():
        yield command, section, by_prog[f"mfe {command}"]
    for model in MODELS:
        yield f"train_task1_{model}_model", "train", build_entry_parser(model)


@pytest.mark.parametrize("command, section, parser", list(_parsers()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_option_of_the_command_has_a_key_of_its_section(command, section, parser):
    fields = flat_fields(type(getattr(Config(), section)))
    dests = {a.dest for a in parser._actions if not isinstance(a, argparse._HelpAction)}
    missing = dests - set(fields) - NOT_SETTINGS
    assert not missing, f"{command}: options without a key in {section}: {sorted(missing)}"


def test_the_short_list_of_non_settings_is_short():
    assert len(NOT_SETTINGS) <= 12


def test_a_run_s_flat_params_put_the_ablation_knobs_under_advanced(tmp_path):
    (tmp_path / "flat.json").write_text(json.dumps({"d_model": 256, "epochs": 2}))
    _, params, resolved = _train(["-p", str(_project(tmp_path)), "--config", str(tmp_path / "flat.json")])
    assert (params.d_model, params.epochs) == (256, 2) and resolved.paths["d_model"] == "advanced.d_model"


def test_an_ablation_knob_at_the_top_of_train_is_an_error_that_names_it(tmp_path):
    with pytest.raises(ConfigError, match="unknown key 'train.d_model'"):
        load_config(_project(tmp_path, "train:\n  d_model: 256\n"))


def test_every_training_parameter_has_a_train_key_with_the_same_default_or_null():
    keys = flat_fields(TrainConfig)
    for f in __import__("dataclasses").fields(TrainParams):
        assert f.name in keys, f.name
        default = keys[f.name][1].get_default(call_default_factory=True)
        model_dependent = any(f.name in d for d in SEED_DEFAULTS.values())
        if model_dependent:
            assert default is None, f"{f.name}: the model's default belongs to SEED_DEFAULTS"
        else:
            real = f.default if f.default is not __import__("dataclasses").MISSING else f.default_factory()
            assert default == real, f"train.{f.name}: {default!r} in the configuration, {real!r} in TrainParams"


# --- replay -----------------------------------------------------------------------------------


def test_replaying_a_run_s_params_json_gives_the_same_parameters(tmp_path):
    """params.json as training/cv.py writes it: TrainParams.to_dict() plus task_dir relative to the run."""
    project = _project(tmp_path, "train:\n  epochs: 7\n  advanced:\n    recipe: mfe1\n")
    (tmp_path / "tasks" / "task-1").mkdir(parents=True)
    _, params, _ = _train(["-p", str(project), "--model", "baseline", "--backbone", "resnet18", "--folds", "0,1",
                           "--image-size", "64", "--sampler", "uniform", "--device", "cpu", "--precision", "bf16"])
    run = tmp_path / "models" / "runs" / params.default_run_name()
    run.mkdir(parents=True)
    (run / "params.json").write_text(json.dumps({**params.to_dict(), "task_dir": "../../../tasks/task-1"}))
    (tmp_path / "mfe.yaml").write_text("train:\n  epochs: 30\n  image_size: 128\n  model: resup\n")  # since changed
    _, again, resolved = _train(["-p", str(project), "--config", str(run / "params.json")])
    assert again.to_dict() == params.to_dict()
    assert again.default_run_name() == params.default_run_name()
    assert resolved.values["task_dir"] == (tmp_path / "tasks" / "task-1").resolve()


# --- mfe config show ----------------------------------------------------------------------------


def test_config_show_train_lists_every_value_with_its_source(tmp_path, capsys):
    project = _project(tmp_path, "train:\n  epochs: 20\n")
    (tmp_path / "c.yaml").write_text("train:\n  image_size: 64\n")
    assert main(["config", "show", "train", "-p", str(project), "--config", str(tmp_path / "c.yaml"),
                 "--model", "baseline"]) == 0
    lines = capsys.readouterr().out.splitlines()[1:]
    rows = {line.split()[0]: (line.split()[1], line.split()[-1]) for line in lines}
    assert set(rows) == {path for path, _ in flat_fields(TrainConfig).values()}
    assert {source for _, source in rows.values()} <= set(SOURCES)
    assert rows["epochs"] == ("20", "mfe.yaml") and rows["image_size"] == ("64", "--config")
    assert rows["model"] == ("baseline", "flag") and rows["learning_rate"] == ("0.01", "default")


def test_config_show_without_a_command_shows_every_section(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(_project(tmp_path, "evaluate:\n  threshold: 0.7\n"))
    assert main(["config", "show"]) == 0
    out = capsys.readouterr().out
    assert all(f"mfe {command} (" in out for command in SECTIONS)
    assert any(line.split() == ["threshold", "0.7", "mfe.yaml"] for line in out.splitlines())


# --- mfe init writes the file from the model ----------------------------------------------------


def test_init_writes_every_key_of_the_model_commented_out_with_a_description(tmp_path):
    from mouse_facial_expressions.project import init_project

    init_project(tmp_path / "proj")
    text = (tmp_path / "proj" / "mfe.yaml").read_text()
    data = yaml.safe_load(text)
    assert set(data) == set(Config.model_fields) - {"root"}
    assert all(v is None for k, v in data.items() if k != "train") and data["train"] == {"advanced": None}
    assert yaml.safe_load(text.replace("    # recipe: ", "    recipe: "))["train"]["advanced"] == {"recipe": "mfe2"}
    lines = text.splitlines()
    for section, field in Config.model_fields.items():
        if section == "root":
            continue
        start = lines.index(next(line for line in lines if line.startswith(f"{section}:")))
        for key, (path, _) in flat_fields(field.annotation).items():
            indent = "  " * (path.count(".") + 1)
            i = next(i for i in range(start, len(lines)) if lines[i].startswith(f"{indent}# {key}: "))
            above = lines[i - 1]  # its one-line description
            assert above.startswith(f"{indent}# "), f"{section}.{path}"
            assert not any(above.startswith(f"{indent}# {k}: ") for k in flat_fields(field.annotation)), f"{section}.{path}"


def test_an_untouched_init_file_changes_nothing(tmp_path):
    from mouse_facial_expressions.project import init_project

    init_project(tmp_path)
    cfg = load_config(tmp_path)
    assert cfg.model_dump() == Config(root=tmp_path).model_dump()
    assert all(not getattr(cfg, s).model_fields_set for s in Config.model_fields if s != "root")


def test_uncommenting_a_key_of_the_init_file_sets_it(tmp_path):
    from mouse_facial_expressions.project import init_project

    init_project(tmp_path)
    text = (tmp_path / "mfe.yaml").read_text().replace("  # epochs: null", "  epochs: 20")
    (tmp_path / "mfe.yaml").write_text(text)
    assert make_params("baseline", load_config(tmp_path).train).epochs == 20


def test_config_show_takes_the_project_before_the_command_too(tmp_path, capsys):
    project = _project(tmp_path, "evaluate:\n  threshold: 0.7\n")
    assert main(["config", "show", "-p", str(project), "evaluate", "--bootstrap", "10"]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert ["threshold", "0.7", "mfe.yaml"] in rows and ["bootstrap", "10", "flag"] in rows


def test_a_path_in_mfe_yaml_is_relative_to_the_project(tmp_path, monkeypatch):
    (tmp_path / "proj").mkdir()
    project = _project(tmp_path / "proj", "predict:\n  out: scores\n  images: [photos]\n")
    monkeypatch.chdir(tmp_path)
    args = build_parser().parse_args(["predict", "-p", str(project)])
    resolve_args(args, "predict")
    assert args.out == project.resolve() / "scores" and args.images == [project.resolve() / "photos"]


def test_a_train_section_of_the_older_layout_trains_as_it_did(tmp_path, caplog):
    """An older ``mfe init`` wrote every train key with its default, ablation keys at the top; that
    mfe counted only values that differed from those defaults. Such a project keeps training as it did."""
    from mouse_facial_expressions.config import load_config
    from mouse_facial_expressions.project import init_project
    from mouse_facial_expressions.training.params import make_params

    init_project(tmp_path)
    older = ("train:\n  model: \"advanced\"\n  backbone: \"resnet34\"\n  image_size: 112\n  epochs: 7\n  learning_rate: 0.0001\n"
             "  weight_decay: 0.0001\n  train_batch_size: 16\n  num_frames: 10\n  frame_stride: 2\n  label_smoothing: 0.2\n"
             "  use_soft_labels: true\n  seed: 97531\n  recipe: null\n  tracking_uri: null\n")
    text = (tmp_path / "mfe.yaml").read_text()
    (tmp_path / "mfe.yaml").write_text(text.replace("\ntrain:", "\n" + older + "train_unused_marker:", 1).replace(
        "train_unused_marker:", "# the current layout's train section, commented away:\n#train:", 1))
    with caplog.at_level("WARNING"):
        p = make_params("baseline", load_config(tmp_path).train)
    assert "older layout" in caplog.text
    assert p.epochs == 7 and p.label_smoothing == 0.2  # changed from the older defaults: they count
    assert p.learning_rate == 1e-2 and p.train_batch_size == 20 and p.num_frames is None  # the older defaults do not
