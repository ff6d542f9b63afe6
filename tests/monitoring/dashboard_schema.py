"""Check a dashboard's JSON against Grafana's own dashboard models (grafana-foundation-sdk, cog-generated).

The SDK's `from_json` is lenient: it drops keys it does not know and stores values as given. So a dashboard
is checked twice over: (1) parsed and written back, every key and value of the original must come back
unchanged (a misspelt or unknown key is dropped, so it shows up here); (2) every value the parsed model holds
must fit the model's type hints: enums (drawStyle, colorMode, ...), literals, numbers, booleans, lists and
nested models, including each panel plugin's options and field config.
"""

from __future__ import annotations

import enum
import json
import types
import typing
from functools import cache
from typing import Any

from grafana_foundation_sdk.cog import plugins, runtime
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import dashboard as dashboard_model

_NONE = type(None)


@cache
def _plugins_registered() -> None:
    # Panel options and queries are decoded by plugin: without the registry they stay untyped dicts.
    plugins.register_default_plugins()


def known_panel_types() -> set[str]:
    _plugins_registered()
    return set(runtime.Runtime().panelcfg_variants)


def parse(data: dict[str, Any]) -> dashboard_model.Dashboard:
    _plugins_registered()
    return dashboard_model.Dashboard.from_json(data)


def validate(data: dict[str, Any]) -> list[str]:
    """Problems found, each naming its JSON path ($.panels[3].options...); empty when the dashboard is valid."""
    model = parse(data)
    round_trip = json.loads(json.dumps(model, cls=JSONEncoder))
    problems = _dropped_or_changed(data, round_trip, "$")
    _check_model(model, "$", problems)
    return problems


def _dropped_or_changed(original: Any, written: Any, path: str) -> list[str]:
    if isinstance(original, dict):
        if not isinstance(written, dict):
            return [f"{path}: an object became {type(written).__name__}"]
        problems = []
        for key, value in original.items():
            if key not in written:
                problems.append(f"{path}.{key}: not part of the model (dropped on parsing)")
            else:
                problems += _dropped_or_changed(value, written[key], f"{path}.{key}")
        return problems
    if isinstance(original, list):
        if not isinstance(written, list) or len(written) != len(original):
            return [f"{path}: the list changed on parsing"]
        return [p for i, (a, b) in enumerate(zip(original, written, strict=True))
                for p in _dropped_or_changed(a, b, f"{path}[{i}]")]
    if original != written:
        return [f"{path}: {original!r} became {written!r} on parsing"]
    return []


def _is_model(value: object) -> bool:
    return type(value).__module__.startswith("grafana_foundation_sdk.")


def _check_model(model: object, path: str, problems: list[str]) -> None:
    for name, hint in typing.get_type_hints(type(model)).items():
        if hasattr(model, name):
            _check(getattr(model, name), hint, f"{path}.{name}", problems)


def _check(value: Any, hint: Any, path: str, problems: list[str]) -> None:
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or hint is object:
        # Panel options and field config are typed `object` but hold the plugin's own model: check that.
        if _is_model(value):
            _check_model(value, path, problems)
        return
    if origin is typing.Union or origin is types.UnionType:
        _check_union(value, hint, args, path, problems)
        return
    if value is None:
        problems.append(f"{path}: null where {hint} is required")
        return
    if origin is typing.Literal:
        if value not in args:
            problems.append(f"{path}: {value!r} is not one of {list(args)}")
    elif origin is list:
        if not isinstance(value, list):
            problems.append(f"{path}: {value!r} is not a list")
            return
        for i, item in enumerate(value):
            _check(item, args[0] if args else Any, f"{path}[{i}]", problems)
    elif origin is dict:
        if not isinstance(value, dict):
            problems.append(f"{path}: {value!r} is not an object")
            return
        for key, item in value.items():
            _check(item, args[1] if args else Any, f"{path}.{key}", problems)
    elif isinstance(hint, type) and issubclass(hint, enum.Enum):
        allowed = {member.value for member in hint}
        raw = value.value if isinstance(value, enum.Enum) else value
        if raw not in allowed:
            problems.append(f"{path}: {value!r} is not one of {sorted(map(str, allowed))}")
    elif hint is bool:
        if not isinstance(value, bool):
            problems.append(f"{path}: {value!r} is not a boolean")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            problems.append(f"{path}: {value!r} is not an integer")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            problems.append(f"{path}: {value!r} is not a number")
    elif hint is str:
        if not isinstance(value, str):
            problems.append(f"{path}: {value!r} is not a string")
    elif isinstance(hint, type):
        if not isinstance(value, hint):
            problems.append(f"{path}: {type(value).__name__} where {hint.__name__} is expected")
        elif _is_model(value):
            _check_model(value, path, problems)
    else:
        problems.append(f"{path}: no check for type hint {hint}")


def _check_union(value: Any, hint: Any, args: tuple[Any, ...], path: str, problems: list[str]) -> None:
    if value is None:
        if _NONE not in args:
            problems.append(f"{path}: null where {hint} is required")
        return
    arms = [arm for arm in args if arm is not _NONE]
    # The arm of the value's own class explains best what is wrong inside it.
    own = [arm for arm in arms if isinstance(arm, type) and _is_model(value) and isinstance(value, arm)]
    if own or len(arms) == 1:
        _check(value, (own or arms)[0], path, problems)
        return
    for arm in arms:
        attempt: list[str] = []
        _check(value, arm, path, attempt)
        if not attempt:
            return
    problems.append(f"{path}: {value!r} fits none of {hint}")
