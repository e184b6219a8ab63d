"""Every administration URL refuses learners and instructors; every instructor URL refuses learners."""

from __future__ import annotations

import re

import pytest

from kaptrain.accounts.models import Role
from tests.factories import make_user


def _urls(app, prefix: str) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """Each rule under prefix with placeholder values, and one method it accepts."""
    out = []
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(prefix):
            continue
        url = re.sub(r"<(?:int:)?(\w+)>", lambda m: "1" if m.group(0).startswith("<int:") else "demo-course", rule.rule)
        method = "GET" if "GET" in rule.methods else "POST"
        out.append((url, method))
    assert out, f"no routes under {prefix}"
    return out


@pytest.mark.parametrize(
    ("prefix", "role"), [("/admin", Role.LEARNER), ("/admin", Role.INSTRUCTOR), ("/instructor", Role.LEARNER)]
)
def test_privileged_urls_refuse_lesser_roles(app, client, db, login, prefix, role):
    login(make_user(db, role=role))
    db.commit()
    for url, method in _urls(app, prefix):
        response = client.open(url, method=method, data={})
        assert response.status_code == 403, f"{method} {url} gave {response.status_code} to a {role.value}"
