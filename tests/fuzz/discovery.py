"""Find what the fuzz tests must cover, from the code itself: every form class, and every route that takes input
(each rule accepting POST, PUT, PATCH or DELETE, and each GET whose view reads the query string), with the role
its view requires. A new form or route is fuzzed without editing the tests."""

from __future__ import annotations

import importlib
import pkgutil
import types
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import flask_login
from flask import Flask
from flask_wtf import FlaskForm

import kaptrain
from kaptrain.accounts.models import Role

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_LOGIN_REQUIRED = flask_login.login_required(lambda: None).__code__


def import_every_module() -> None:
    """Import every kaptrain module, so that every form class is defined."""
    for info in pkgutil.walk_packages(kaptrain.__path__, "kaptrain."):
        importlib.import_module(info.name)


def form_classes() -> list[type[FlaskForm]]:
    """Every FlaskForm subclass defined in kaptrain that nothing else derives from (the bases are covered through
    their subclasses)."""
    import_every_module()
    found: list[type[FlaskForm]] = []
    todo = [FlaskForm]
    while todo:
        cls = todo.pop()
        subs = cls.__subclasses__()
        todo += subs
        if not subs and cls.__module__.startswith("kaptrain."):
            found.append(cls)
    return sorted(set(found), key=lambda c: f"{c.__module__}.{c.__qualname__}")


def _functions(view: Any) -> Iterator[types.FunctionType]:
    """The view and every function its decorators wrap (through __wrapped__ and closures)."""
    seen: list[types.FunctionType] = []
    todo = [view]
    while todo:
        f = todo.pop()
        if not isinstance(f, types.FunctionType) or f in seen:
            continue
        seen.append(f)
        yield f
        todo.append(getattr(f, "__wrapped__", None))
        for cell in f.__closure__ or ():
            try:
                todo.append(cell.cell_contents)
            except ValueError:  # an empty cell
                continue


def _codes(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _codes(const)


def _reads_query(view: Any, depth: int = 2) -> bool:
    """Whether the view (or a helper of its module it calls) reads request.args."""
    for f in _functions(view):
        for code in _codes(f.__code__):
            if {"request", "args"} <= set(code.co_names):
                return True
            for name in code.co_names if depth else ():
                helper = f.__globals__.get(name)
                if (
                    isinstance(helper, types.FunctionType)
                    and helper.__module__ == f.__module__
                    and _reads_query(helper, depth - 1)
                ):
                    return True
    return False


def _roles(view: Any) -> tuple[Role, ...]:
    """The roles kaptrain.auth.role_required was given for this view (empty when it has none)."""
    for f in _functions(view):
        for cell in f.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:
                continue
            if isinstance(value, tuple) and value and all(isinstance(r, Role) for r in value):
                return value
    return ()


@dataclass(frozen=True)
class Route:
    """One URL rule and method that takes input."""

    rule: str
    endpoint: str
    method: str
    params: tuple[tuple[str, str], ...]  # (name, "int" or "str")
    needs_login: bool
    roles: tuple[Role, ...]

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"


def routes(app: Flask) -> list[Route]:
    """Every rule accepting a write method (once per method), and every GET whose view reads the query string."""
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        methods = sorted((rule.methods or set()) & WRITE_METHODS)
        if "GET" in (rule.methods or set()) and rule.endpoint != "static" and _reads_query(view):
            methods.append("GET")
        converters = rule._converters  # noqa: SLF001 - the parameter types of the rule
        params = tuple(
            (name, "int" if type(conv).__name__ == "IntegerConverter" else "str") for name, conv in converters.items()
        )
        needs_login = any(f.__code__ is _LOGIN_REQUIRED for f in _functions(view))
        for method in methods:
            found.append(Route(rule.rule, rule.endpoint, method, params, needs_login, _roles(view)))
    return sorted(found, key=lambda r: (r.rule, r.method))
