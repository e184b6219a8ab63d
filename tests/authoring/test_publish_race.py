"""Two instructors (or one double click that slipped past the page's guard) publishing the same draft at the same
moment: one publishes, the other is told the draft is gone, on a database of its own where the work is committed
(PostgreSQL reads the draft FOR UPDATE; SQLite has one writer)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import Role, User
from kaptrain.authoring import services
from kaptrain.content import revisions
from kaptrain.content.models import Module, ModuleRevision
from tests.conftest import load_fixture_course, make_test_app
from tests.factories import make_user, run_at_once
from tests.scratch_database import scratch_database

AT_ONCE = 4


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """An app on a database of its own, migrated, with the fixture course."""
    for url in scratch_database(tmp_path_factory.mktemp("publish-race"), "publishrace"):
        app = make_test_app(url)
        load_fixture_course(app)
        yield app
        app.extensions["kaptrain.db"].engine.dispose()


def test_publishes_sent_at_once_publish_once(site: Flask) -> None:
    engine = site.extensions["kaptrain.db"].engine
    with site.app_context(), Session(engine) as s:
        author = make_user(s, Role.INSTRUCTOR)
        alpha = s.scalar(select(Module).where(Module.slug == "alpha"))
        assert alpha is not None
        data, _draft = services.current_data(s, alpha)
        draft = services.save_draft(s, alpha, {**data, "body": data["body"] + "\n\nOne more paragraph."}, author, None)
        s.commit()
        module_id, author_id, version = alpha.id, author.id, draft.version
        before = s.scalar(select(func.count()).where(ModuleRevision.module_id == module_id))

    def publish() -> None:
        with site.app_context(), Session(engine) as s:
            module, user = s.get(Module, module_id), s.get(User, author_id)
            assert module is not None and user is not None
            services.publish_draft(s, module, user, version)
            s.commit()

    errors = run_at_once(AT_ONCE, publish)
    assert len(errors) == AT_ONCE - 1 and all(isinstance(e, services.StaleDraft) for e in errors), errors
    with Session(engine) as s:
        assert s.scalar(select(func.count()).where(ModuleRevision.module_id == module_id)) == before + 1
        module = s.get(Module, module_id)
        assert module is not None and revisions.draft_for(s, module) is None
