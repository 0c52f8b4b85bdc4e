"""`fastddsp train`'s options are made from ``TrainConfig``: one option per field, with the
field's default, and the parsed options make the config back."""

import argparse
import dataclasses
import json
from pathlib import Path

import pytest

from fastddsp.cli import train as train_cli
from fastddsp.cli.main import build_parser
from fastddsp.training.train import TrainConfig

NOT_OPTIONS = {"decay_rate", "grad_clip"}  # TrainConfig fields kept off the command line


def train_parser() -> argparse.ArgumentParser:
    parser = build_parser()
    parser.parse_args(["train", "DATA", "-o", "m.fddsp"])  # makes train's deferred options
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices["train"]


def parse(*options: str) -> argparse.Namespace:
    return build_parser().parse_args(["train", "DATA", "-o", "m.fddsp", *options])


def test_every_config_field_has_one_option_with_its_default():
    parser = train_parser()
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    assert {name for name, f in fields.items() if "option" not in f.metadata} == NOT_OPTIONS
    for name, f in fields.items():
        if name in NOT_OPTIONS:
            continue
        flag = "--" + name.replace("_", "-")
        actions = [a for a in parser._actions if a.dest == name]
        assert len(actions) == 1, name
        assert flag in actions[0].option_strings
        assert parser.get_default(name) == f.default, name


def test_an_empty_train_command_is_the_default_config():
    assert train_cli.config(parse()) == TrainConfig()


def test_special_values_parse_as_before():
    cfg = train_cli.config(parse("--pitch-shifts", "-2, 0,2.5", "--devices", "2",
                                 "--no-noise-floor", "--preset", "cnn", "--reverb", "free",
                                 "--patience", "3", "--max-harmonic-hz", "4000"))
    assert cfg.pitch_shifts == (-2.0, 0.0, 2.5) and cfg.devices == 2
    assert cfg.noise_floor is False and cfg.preset == "cnn" and cfg.reverb == "free"
    assert cfg.patience == 3 and cfg.max_harmonic_hz == 4000.0
    cfg = train_cli.config(parse("--devices", "auto", "--noise-floor"))
    assert cfg.devices == "auto" and cfg.noise_floor is True


def test_init_without_preset_takes_the_init_models():
    assert train_cli.config(parse("--init", "violin-cnn")).preset is None
    assert train_cli.config(parse()).preset == "tiny"


@pytest.mark.parametrize(("options", "message"), [
    (["--pitch-shifts", "1,x"], "--pitch-shifts must be comma-separated numbers"),
    (["--pitch-shifts", ","], "--pitch-shifts is empty"),
    (["--steps", "0"], "--steps must be at least 1"),
])
def test_bad_values_are_user_errors(options, message):
    from fastddsp import UserError

    with pytest.raises(UserError, match=message):
        train_cli.config(parse(*options))


def test_choices_are_checked_by_the_parser(capsys):
    with pytest.raises(SystemExit) as e:
        parse("--keep", "worst")
    assert e.value.code == 2
    assert "invalid choice" in capsys.readouterr().err


def test_every_option_has_help_that_shows_its_default():
    import argparse

    from fastddsp.cli.main import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    missing = []
    for name, command in sub.choices.items():
        while command._deferred:  # make deferred options (train's) exist
            command._deferred.pop(0)(command)
        for action in command._actions:
            if isinstance(action, argparse._HelpAction) or not action.option_strings:
                continue
            text = " ".join((action.help or "").split())
            flag = action.option_strings[-1]
            if not text:
                missing.append(f"{name} {flag}: no help")
            elif action.default not in (None, False, argparse.SUPPRESS) and \
                    "default" not in text and "%(default)" not in text:
                missing.append(f"{name} {flag}: default {action.default!r} not shown")
    assert missing == []


RECIPES = sorted((Path(__file__).resolve().parents[2] / "recipes" / "models").glob("*.json"))


@pytest.mark.parametrize("recipe", RECIPES, ids=[r.stem for r in RECIPES])
def test_a_recipe_file_is_the_training_config(recipe, tmp_path):
    from fastddsp.cli.train import config

    written = json.loads(recipe.read_text())["train"]
    parsed = config(build_parser().parse_args(["train", "d", "--recipe", str(recipe), "-o",
                                               "x"]))
    assert {k: list(v) if isinstance(v, tuple) else v
            for k, v in dataclasses.asdict(parsed).items()} == written
    assert parsed != TrainConfig(preset=parsed.preset)  # a recipe, not the defaults
    # an option given on the command line wins over the recipe's value
    steps = config(build_parser().parse_args(["train", "d", "--recipe", str(recipe), "-o", "x",
                                              "--steps", "7"]))
    assert steps.steps == 7 and steps.lr == parsed.lr


def test_a_recipe_with_unknown_settings_is_refused(tmp_path):
    from fastddsp.cli.main import run

    bad = tmp_path / "r.json"
    bad.write_text(json.dumps({"train": {"steps": 5, "learning_rate": 1}}))
    assert run(["train", str(tmp_path), "--recipe", str(bad), "-o", str(tmp_path / "m")]) == 2
    bad.write_text("{not json")
    assert run(["train", str(tmp_path), "--recipe", str(bad), "-o", str(tmp_path / "m")]) == 2


def test_the_rebuild_script_trains_every_bundled_model_from_its_recipe():
    script = (RECIPES[0].parents[2] / "scripts" / "train_pretrained.sh").read_text()
    assert "--recipe" in script and "ARGS=(" not in script
    bundled_float = {p.stem for p in (RECIPES[0].parents[2] / "src" / "fastddsp" /
                                      "pretrained").glob("*.fddsp") if not p.stem.endswith("-q")}
    assert bundled_float <= {r.stem for r in RECIPES}
