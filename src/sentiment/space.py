"""Search spaces of ``sentiment tune``: YAML keyed by the dotted config keys of ``--set``, each a range or a
list of choices::

    training.lr: {low: 1.0e-4, high: 1.0e-2, log: true}   # a float setting: a (log-)uniform range
    training.epochs: {low: 5, high: 30, step: 5}          # an int setting: an int range
    model.hidden_dims: {choices: [[64], [128, 64]]}       # any setting: a list of values (lists too)

Sections may also nest (``training: {lr: {low: ..., high: ...}}``). Every key, bound and choice is checked
against the config schema before any trial runs, so a typo or an impossible value is an error naming the key
(exit 2 in the CLI), not a failed trial. No Optuna here: ``Param.suggest`` takes any object with Optuna's
``suggest_float`` / ``suggest_int`` / ``suggest_categorical``.
"""

from __future__ import annotations

import difflib
import json
import types
import typing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from sentiment.config import Config, all_keys, load_config, read_yaml, short
from sentiment.errors import ConfigError

RANGE_FIELDS = {"low", "high", "log", "step"}
SPEC_FIELDS = RANGE_FIELDS | {"choices"}
# Settings a trial cannot change the validation figures with: tuning them only burns trials.
NOT_TUNABLE = {
    "training.refit": "the refit comes after validation, so it never changes the figures a tune compares",
}


@dataclass(frozen=True)
class Param:
    """One searched setting: a float or int range, or a list of choices."""

    key: str
    kind: Literal["float", "int", "choice"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: tuple[Any, ...] = field(default_factory=tuple)

    @property
    def encoded(self) -> bool:
        """Optuna stores only None, bool, int, float and str choices: lists and mappings go as JSON text."""
        return any(not isinstance(c, None | bool | int | float | str) for c in self.choices)

    @property
    def options(self) -> list[Any]:
        """The choices as Optuna stores them."""
        return [json.dumps(c) for c in self.choices] if self.encoded else list(self.choices)

    def suggest(self, trial: Any) -> Any:
        """The trial's value of this setting, as the config takes it."""
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            step = int(self.step) if self.step is not None else 1
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log, step=step)
        return self.decode(trial.suggest_categorical(self.key, self.options))

    def decode(self, stored: Any) -> Any:
        """A value as Optuna stored it -> the value the config takes."""
        return json.loads(stored) if self.kind == "choice" and self.encoded else stored

    def describe(self) -> str:
        """The range or the choices in a few characters (tables, docs)."""
        if self.kind == "choice":
            return " | ".join(json.dumps(c) for c in self.choices)
        text = f"{self.low:g} .. {self.high:g}"
        if self.step is not None:
            text += f" step {self.step:g}"
        return text + (" (log)" if self.log else "")

    def to_dict(self) -> dict[str, Any]:
        """A plain record: what a study stores to recognise its space."""
        return {**asdict(self), "choices": list(self.choices)}


def short_names(params: list[Param]) -> dict[str, str]:
    """Each key's last part (``lr`` for ``training.lr``) where that is unambiguous, else the whole key."""
    last = [p.key.rsplit(".", 1)[-1] for p in params]
    return {p.key: (name if last.count(name) == 1 else p.key) for p, name in zip(params, last, strict=True)}


def load_space(
    path: Path, config: str | Path | None = None, overrides: list[str] | None = None
) -> list[Param]:
    """Read and check a search space against the config it searches (a file or shipped name, with --set
    ``overrides``): every key a setting of the schema, every bound and choice a valid value for it."""
    if not path.is_file():
        raise ConfigError(f"search space not found: {path}" + (" (a directory)" if path.is_dir() else ""))
    raw = read_yaml(path)
    specs = _flatten(raw, "", path)
    if not specs:
        raise ConfigError(
            f"{path}: no settings to search; give at least one, e.g. "
            "training.lr: {low: 1.0e-4, high: 1.0e-2, log: true}"
        )
    overridden = {pair.split("=", 1)[0].strip() for pair in overrides or []}
    params = []
    for key, spec in specs.items():
        if key in overridden:
            raise ConfigError(f"{path}: {key} is both searched and fixed with --set; drop one of them")
        param = _param(key, spec, path)
        for label, value in _values_to_check(param):
            _check_value(config, overrides, key, label, value, path)
        params.append(param)
    return params


def _flatten(raw: dict[str, Any], prefix: str, path: Path) -> dict[str, Any]:
    """{dotted key: spec}, sections written nested or dotted alike."""
    keys, sections = set(all_keys()), {k.split(".")[0] for k in all_keys() if "." in k}
    out: dict[str, Any] = {}
    for name, spec in raw.items():
        key = f"{prefix}{name}"
        nested = isinstance(spec, dict) and not (set(spec) & SPEC_FIELDS)
        if nested and key in sections:
            out.update(_flatten(spec, f"{key}.", path))
        elif key in keys:
            out[key] = spec
        else:
            close = difflib.get_close_matches(key, sorted(keys), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            what = "a section, not a setting" if key in sections else "unknown key"
            raise ConfigError(f"{path}: {what} {short(key)}{hint}")
    return out


def _param(key: str, spec: Any, path: Path) -> Param:
    where = f"{path}: {key}"
    example = "{low: 0.0001, high: 0.01, log: true} or {choices: [a, b]}"
    if key in NOT_TUNABLE:
        raise ConfigError(f"{where}: not searchable: {NOT_TUNABLE[key]}")
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: expected a range or choices such as {example}, got {short(spec)}")
    unknown = sorted(set(spec) - SPEC_FIELDS, key=str)
    if unknown:
        raise ConfigError(
            f"{where}: unknown field {short(unknown[0])} (a range has low, high, log, step; or choices)"
        )
    if "choices" in spec:
        if set(spec) & RANGE_FIELDS:
            raise ConfigError(f"{where}: give a range (low, high) or choices, not both")
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where}: choices must be a non-empty list, got {short(choices)}")
        if len({json.dumps(c, sort_keys=True) for c in choices}) != len(choices):
            raise ConfigError(f"{where}: choices repeat a value")
        return Param(key, "choice", choices=tuple(choices))
    if "low" not in spec or "high" not in spec:
        raise ConfigError(f"{where}: a range needs both low and high ({example})")
    low, high, log, step = spec["low"], spec["high"], spec.get("log", False), spec.get("step")
    for name, value in (("low", low), ("high", high), ("step", step)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ConfigError(f"{where}: {name} must be a number, got {short(value)}")
    if not isinstance(log, bool):
        raise ConfigError(f"{where}: log must be true or false, got {short(log)}")
    if not low < high:
        raise ConfigError(f"{where}: low must be below high (low {low}, high {high})")
    if log and low <= 0:
        raise ConfigError(f"{where}: a log range needs low > 0 (low {low})")
    if step is not None and (step <= 0 or log):
        raise ConfigError(f"{where}: step must be > 0 and cannot go with log (step {step})")
    kind = _numeric_kind(key)
    if kind is None:
        raise ConfigError(f"{where}: not a number setting, so it takes choices, not a range")
    if kind == "int":
        if any(v is not None and float(v) != int(v) for v in (low, high, step)):
            raise ConfigError(f"{where}: an int setting needs whole-number low, high and step")
        low, high, step = int(low), int(high), int(step) if step is not None else None
    else:
        low, high, step = float(low), float(high), float(step) if step is not None else None
    return Param(key, kind, low=low, high=high, log=log, step=step)


def _numeric_kind(key: str) -> Literal["float", "int"] | None:
    """float or int when the schema's type for ``key`` is a number (None allowed beside it), else None."""
    model: type[BaseModel] = Config
    *sections, name = key.split(".")
    for section in sections:
        model = typing.cast("type[BaseModel]", model.model_fields[section].annotation)
    annotation = model.model_fields[name].annotation
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    args = typing.get_args(annotation) if union else (annotation,)
    kinds = set(args) - {type(None)}
    if float in kinds:
        return "float"
    if kinds == {int}:
        return "int"
    return None


def _values_to_check(param: Param) -> list[tuple[str, Any]]:
    if param.kind == "choice":
        return [(f"choice {_json_short(c)}", c) for c in param.choices]
    return [(f"low {param.low:g}", param.low), (f"high {param.high:g}", param.high)]


def _json_short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else f"{text[:56]}..."


def _check_value(
    config: str | Path | None, overrides: list[str] | None, key: str, label: str, value: Any, path: Path
) -> None:
    try:
        load_config(config, overrides, {key: value})
    except ConfigError as exc:
        reason = str(exc).split(": ", 1)[-1]  # drop the config's name: the space is what is wrong
        raise ConfigError(f"{path}: {key}: {label} is not a valid value ({reason})") from None
