"""`fastddsp train`: a data folder -> a model file. Its training options are made from the
fields of ``TrainConfig`` (defaults, help, choices), and the parsed options become one."""

from __future__ import annotations

import argparse
import sys
import typing
from dataclasses import Field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import UserError
from .common import Parser

if TYPE_CHECKING:
    from ..training.train import TrainConfig


def register(subparsers: argparse._SubParsersAction) -> None:
    s = subparsers.add_parser("train", help="data folder -> model file (PyTorch Lightning)")
    # TrainConfig's module imports Lightning (seconds, and the [train] extra): its options are
    # made only when `train` is the command
    s.defer(add_options)
    s.set_defaults(func=run)


def add_options(parser: Parser) -> None:
    from ..training.train import TrainConfig

    parser.add_argument("data_dir")
    parser.add_argument("-o", "--output", required=True, help="model file to write (.fddsp)")
    for f, hint in _fields(TrainConfig):
        settings = dict(f.metadata["option"])
        shown = f.default not in (None, False) and "default" not in (settings["help"] or "")
        if shown:  # every option's help shows its default
            value = ",".join(f"{v:g}" for v in f.default) if isinstance(f.default, tuple) \
                else f.default
            settings["help"] = f"{settings['help']} (default {value})"
        parser.add_argument(_flag(f), default=f.default, **_value(hint), **settings)
    parser.add_argument("--recipe", metavar="FILE",
                        help="a JSON recipe (recipes/models/*.json): its training settings; "
                             "an option given here with another value than its default "
                             "overrides the recipe's")
    parser.add_argument("--run-dir", help="checkpoints and logs (default: OUTPUT with .run)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _fields(cls: type) -> list[tuple[Field, Any]]:
    """The fields of the dataclass ``cls`` that are command-line options, with their types."""
    hints = typing.get_type_hints(cls)
    return [(f, hints[f.name]) for f in fields(cls) if "option" in f.metadata]


def _flag(f: Field) -> str:
    return "--" + f.name.replace("_", "-")


def _value(hint: Any) -> dict[str, Any]:
    """How argparse reads the value of a field of this type."""
    if typing.get_origin(hint) is tuple:  # comma-separated numbers, read by `config`
        return {}
    kinds = [t for t in typing.get_args(hint) if t is not type(None)] or [hint]
    if kinds == [bool]:
        return {"action": argparse.BooleanOptionalAction}  # --x / --no-x
    if kinds == [int, str]:
        return {"type": _count_or_text}
    return {"type": kinds[0]}


def _count_or_text(text: str) -> int | str:
    return int(text) if text.isdigit() else text


def _floats(text: str, option: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise UserError(f"{option} must be comma-separated numbers, not {text!r}") from None
    if not values:
        raise UserError(f"{option} is empty")
    return values


def config(args: argparse.Namespace) -> TrainConfig:
    """The ``TrainConfig`` of parsed ``train`` options (over ``--recipe``'s, if given)."""
    from ..training.train import TrainConfig, read_recipe

    recipe = read_recipe(args.recipe) if getattr(args, "recipe", None) else {}
    values = {}
    for f, hint in _fields(TrainConfig):
        value = getattr(args, f.name)
        if typing.get_origin(hint) is tuple and isinstance(value, str):
            value = _floats(value, _flag(f))
        values[f.name] = recipe[f.name] if f.name in recipe and value == f.default else value
    for name in set(recipe) - set(values):  # settings that are not options (decay_rate, ...)
        values[name] = recipe[name]
    return TrainConfig(**values)


def run(args: argparse.Namespace) -> int:
    from ..io import refuse_overwrite
    from ..models import model_file
    from ..training.train import train

    output = Path(args.output)
    output = output if output.suffix else output.with_suffix(".fddsp")  # as train() writes it
    refuse_overwrite(output, *(model_file(m) for m in (args.init, args.teacher) if m))
    cfg = config(args)
    if cfg.steps < cfg.val_every:
        print(f"note: --steps {cfg.steps} is fewer than --val-every {cfg.val_every}: no "
              f"validation will run", file=sys.stderr)
    r = train(args.data_dir, args.output, cfg, run_dir=args.run_dir,
              resume=args.resume, progress=not args.quiet)
    losses = [f"training loss {r.final_train_loss:.3f}"] if r.final_train_loss is not None else []
    if r.final_val_loss is not None:
        losses.append(f"validation loss {r.final_val_loss:.3f}" + (
            f" (the weights of step {r.kept_step}, the best validated)"
            if r.kept_step is not None else ""))
    speed = (f" in {r.seconds:.0f} s ({r.seconds_per_step:.3f} s/step)"
             if r.last_step > r.first_step else " (nothing left to train)")
    print(f"wrote {r.model_path}: steps {r.first_step}->{r.last_step}{speed}"
          f"{'; ' + ', '.join(losses) if losses else ''}; validation audio in "
          f"{r.run_dir / 'audio'}, logs and checkpoints in {r.run_dir}")
    return 0
