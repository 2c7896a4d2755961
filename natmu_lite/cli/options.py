"""What the commands share: the argparse types that refuse a bad value with a message naming the option
(argparse exits with status 2), the options several commands take, each defined once, and the setting
they make up."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .. import setting_file
from ..audit import MIN_MODELS
from ..methods import SEARCH_SPACES
from ..setting import Setting, resized
from ..settings import SETTINGS, get_setting

# ---------------------------------------------------------------------------------------------
# types


def number(kind: type, ok: Callable[[float], bool], rule: str) -> Callable[[str], float]:
    """An argparse type: a number of ``kind`` (``int`` or ``float``) for which ``ok`` holds, ``rule`` saying
    which in words (argparse exits with 2 and a message naming the option)."""
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        if not ok(value):
            raise argparse.ArgumentTypeError(f"must be {rule}, got {text}")
        return value
    return parse


def at_least(least: int) -> Callable[[str], int]:
    """An argparse type: an integer >= ``least``."""
    return number(int, lambda v: v >= least, f"an integer >= {least}")


POSITIVE, NON_NEGATIVE = at_least(1), at_least(0)
seconds = number(float, lambda v: v > 0, "a positive number of seconds")
candidate_fraction = number(float, lambda v: 0 < v <= 0.5, "a number in (0, 0.5]")  # U-LiRA's candidates' share


def model_count(text: str) -> int:
    """An argparse type: an even integer >= MIN_MODELS (U-LiRA's models come in complementary pairs)."""
    value = at_least(MIN_MODELS)(text)
    if value % 2:
        raise argparse.ArgumentTypeError(f"must be even (the models come in complementary pairs), got {value}")
    return value


# ---------------------------------------------------------------------------------------------
# options several commands take

def old_spelling(p: argparse.ArgumentParser, old: str, new: str, **kwargs) -> None:
    """An option's spelling before the words of CONTRIBUTING.md: still accepted for one release, never shown
    in --help (``new`` is the option it stands for)."""
    p.add_argument(old, dest=new.lstrip("-").replace("-", "_"), default=argparse.SUPPRESS, help=argparse.SUPPRESS,
                   **kwargs)


def test_size_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--test-size", type=POSITIVE, default=None, help="override the test-subset size")


def unlearn_epochs_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--unlearn-epochs", type=POSITIVE, default=None, help="override the unlearning epochs")


def tuned_method_option(p: argparse.ArgumentParser) -> None:
    """--method, one of the methods with a search space."""
    p.add_argument("--method", required=True, choices=sorted(SEARCH_SPACES))


def size_options(p: argparse.ArgumentParser) -> None:
    """The size overrides every training command takes (and --quiet, --compile)."""
    p.add_argument("--train-size", type=POSITIVE, default=None, help="override the training-subset size")
    p.add_argument("--epochs", type=POSITIVE, default=None, help="override the original/retrain epochs")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--compile", default=None, choices=["default", "reduce-overhead"],
                   help="torch.compile mode of every training run (GPU; reduce-overhead measured 2x on an H200)")


def setting_choice(p: argparse.ArgumentParser, default: str | None = "default", **kwargs) -> None:
    """--setting, a named setting (by default one of the package's)."""
    kwargs.setdefault("choices", sorted(SETTINGS))
    p.add_argument("--setting", default=default, **kwargs)
    old_spelling(p, "--preset", "--setting", choices=kwargs["choices"])


def setting_options(p: argparse.ArgumentParser) -> None:
    """--setting or --setting-file, and every size override: the options of the commands that run a setting."""
    setting_choice(p)
    p.add_argument("--setting-file", default=None, help="a setting file saved by `tune --save-setting`")
    old_spelling(p, "--preset-file", "--setting-file")
    unlearn_epochs_option(p)
    test_size_option(p)
    size_options(p)


# ---------------------------------------------------------------------------------------------
# the setting they make up

def reduced(setting: Setting, args: argparse.Namespace) -> Setting:
    """The setting with the command line's size overrides (for quick runs and tests)."""
    return resized(setting, args.train_size, getattr(args, "test_size", None), args.epochs,
                   getattr(args, "unlearn_epochs", None), getattr(args, "compile", None))


def chosen_setting(args: argparse.Namespace) -> Setting:
    """--setting-file (tuned parameters) or --setting, with the size overrides."""
    base = setting_file.load(args.setting_file) if getattr(args, "setting_file", None) else get_setting(args.setting)
    return reduced(base, args)
