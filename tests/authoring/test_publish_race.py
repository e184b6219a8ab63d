"""Two instructors (or one double click that slipped past the page's guard) publishing the same draft at the same
moment: one publishes, the other is told the draft is gone, on a database of its own where the work is committed
(PostgreSQL reads the draft FOR UPDATE; SQLite has one writer)."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from kaptrain.accounts.models import Role, User
from kaptrain.authoring import services
from kaptrain.content import revisions
from kaptrain.content.files import read_content
from kaptrain.content.loader import import_content
from kaptrain.content.models import Module, ModuleRevision
from kaptrain.migrate import upgrade
from tests.conftest import FIXTURE_MODULES, FIXTURE_QUIZZES, make_test_app
from tests.factories import make_user
from tests.scratch_database import scratch_database

AT_ONCE = 4


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    """An app on a database of its own, migrated, with the fixture course."""
    for url in scratch_database(tmp_path_factory.mktemp("publish-race"), "publishrace"):
        app = make_test_app(url)
        database = app.extensions["kaptrain.db"]
        upgrade(database.engine)
        with app.app_context():
            session = database.new_session()
            import_content(session, read_content(FIXTURE_MODULES, FIXTURE_QUIZZES))
            session.commit()
            session.close()
        yield app
        database.engine.dispose()


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
    barrier = threading.Barrier(AT_ONCE)
    errors: list[BaseException] = []

    def publish() -> None:
        try:
            barrier.wait(timeout=30)
            with site.app_context(), Session(engine) as s:
                module, user = s.get(Module, module_id), s.get(User, author_id)
                assert module is not None and user is not None
                services.publish_draft(s, module, user, version)
                s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            errors.append(exc)

    threads = [threading.Thread(target=publish) for _ in range(AT_ONCE)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(errors) == AT_ONCE - 1 and all(isinstance(e, services.StaleDraft) for e in errors), errors
    with Session(engine) as s:
        assert s.scalar(select(func.count()).where(ModuleRevision.module_id == module_id)) == before + 1
        module = s.get(Module, module_id)
        assert module is not None and revisions.draft_for(s, module) is None
