"""authoring: published revisions, drafts, revisioned quiz settings, shared case vignettes, uploads

Revision ID: 0007_authoring
Revises: 0006_admin
Create Date: 2026-11-26

What learners see becomes explicit: each module and question points at its published revision (until now,
the highest number), which is also marked as the one the content files match. Each quiz's rules become
revision 1 of its settings and every existing attempt is recorded as taken under it (the pass mark an attempt
was graded against was already stored on the attempt). Cases that each question revision carried a copy of
become shared, revisioned vignettes: one revision per distinct text, and each past attempt item points at the
text its learner read. Final-assessment questions name their module by id instead of by slug.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import kaptrain.db

revision: str = "0007_authoring"
down_revision: str | None = "0006_admin"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OPEN_ATTEMPT = sa.text("status = 'open'")
SETTINGS = (
    "title",
    "draw",
    "passing_score",
    "max_attempts",
    "cooldown_hours",
    "time_limit_minutes",
    "reveal_answers",
    "partial_credit",
)


def _create_tables() -> None:
    op.create_table(
        "uploads",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("stored_name", sa.String(length=80), nullable=False),
        sa.Column("original_name", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=50), nullable=False),
        sa.Column("size_bytes", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploaded_at", kaptrain.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("uploaded_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["uploaded_by_id"], ["users.id"], name=op.f("fk_uploads_uploaded_by_id_users"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_uploads")),
        sa.UniqueConstraint("stored_name", name=op.f("uq_uploads_stored_name")),
    )
    op.create_index(op.f("ix_uploads_sha256"), "uploads", ["sha256"], unique=False)
    op.create_table(
        "quiz_settings_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("quiz_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("draw", sa.Integer(), nullable=False),
        sa.Column("passing_score", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("cooldown_hours", sa.Integer(), nullable=False),
        sa.Column("time_limit_minutes", sa.Integer(), nullable=True),
        sa.Column(
            "reveal_answers",
            sa.Enum("after_pass", "always", "never", name="reveal", native_enum=False, length=20),
            nullable=False,
        ),
        sa.Column("partial_credit", sa.Boolean(), nullable=False),
        sa.Column("allow_extension", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", kaptrain.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_quiz_settings_revisions_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["quiz_id"], ["quizzes.id"], name=op.f("fk_quiz_settings_revisions_quiz_id_quizzes"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quiz_settings_revisions")),
        sa.UniqueConstraint("quiz_id", "number", name=op.f("uq_quiz_settings_revisions_quiz_id_number")),
    )
    op.create_index(op.f("ix_quiz_settings_revisions_quiz_id"), "quiz_settings_revisions", ["quiz_id"], unique=False)
    op.create_table(
        "vignettes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("quiz_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=100), nullable=False),
        sa.Column("published_revision_id", sa.Integer(), nullable=True),
        sa.Column("file_revision_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["quiz_id"], ["quizzes.id"], name=op.f("fk_vignettes_quiz_id_quizzes"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vignettes")),
        sa.UniqueConstraint("quiz_id", "key", name=op.f("uq_vignettes_quiz_id_key")),
    )
    op.create_index(op.f("ix_vignettes_quiz_id"), "vignettes", ["quiz_id"], unique=False)
    op.create_table(
        "vignette_revisions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("vignette_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=300), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", kaptrain.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_vignette_revisions_created_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["vignette_id"],
            ["vignettes.id"],
            name=op.f("fk_vignette_revisions_vignette_id_vignettes"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vignette_revisions")),
        sa.UniqueConstraint("vignette_id", "number", name=op.f("uq_vignette_revisions_vignette_id_number")),
    )
    op.create_index(op.f("ix_vignette_revisions_vignette_id"), "vignette_revisions", ["vignette_id"], unique=False)
    with op.batch_alter_table("vignettes") as batch_op:
        batch_op.create_foreign_key(
            batch_op.f("fk_vignettes_file_revision_id_vignette_revisions"),
            "vignette_revisions",
            ["file_revision_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_vignettes_published_revision_id_vignette_revisions"),
            "vignette_revisions",
            ["published_revision_id"],
            ["id"],
            ondelete="RESTRICT",
        )
    one_item = " + ".join(
        f"(CASE WHEN {c} IS NULL THEN 0 ELSE 1 END)" for c in ("module_id", "question_id", "vignette_id", "quiz_id")
    )
    op.create_table(
        "drafts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("course_id", sa.Integer(), nullable=False),
        sa.Column("module_id", sa.Integer(), nullable=True),
        sa.Column("question_id", sa.Integer(), nullable=True),
        sa.Column("vignette_id", sa.Integer(), nullable=True),
        sa.Column("quiz_id", sa.Integer(), nullable=True),
        sa.Column("base_revision_id", sa.Integer(), nullable=True),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("data", sa.JSON(), nullable=False),
        sa.Column("created_at", kaptrain.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("updated_at", kaptrain.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(f"{one_item} = 1", name=op.f("ck_drafts_one_item")),
        sa.ForeignKeyConstraint(
            ["course_id"], ["courses.id"], name=op.f("fk_drafts_course_id_courses"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_drafts_created_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["module_id"], ["modules.id"], name=op.f("fk_drafts_module_id_modules"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["question_id"], ["questions.id"], name=op.f("fk_drafts_question_id_questions"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["quiz_id"], ["quizzes.id"], name=op.f("fk_drafts_quiz_id_quizzes"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["updated_by_id"], ["users.id"], name=op.f("fk_drafts_updated_by_id_users"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["vignette_id"], ["vignettes.id"], name=op.f("fk_drafts_vignette_id_vignettes"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_drafts")),
        sa.UniqueConstraint("module_id", name=op.f("uq_drafts_module_id")),
        sa.UniqueConstraint("question_id", name=op.f("uq_drafts_question_id")),
        sa.UniqueConstraint("quiz_id", name=op.f("uq_drafts_quiz_id")),
        sa.UniqueConstraint("vignette_id", name=op.f("uq_drafts_vignette_id")),
    )
    op.create_index(op.f("ix_drafts_course_id"), "drafts", ["course_id"], unique=False)


def _add_columns() -> None:
    with op.batch_alter_table("module_revisions") as batch_op:
        batch_op.add_column(sa.Column("summary", sa.Text(), server_default="", nullable=False))
    with op.batch_alter_table("modules") as batch_op:
        batch_op.add_column(sa.Column("published_revision_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("file_revision_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_modules_file_revision_id_module_revisions"),
            "module_revisions",
            ["file_revision_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_modules_published_revision_id_module_revisions"),
            "module_revisions",
            ["published_revision_id"],
            ["id"],
            ondelete="RESTRICT",
        )
    with op.batch_alter_table("questions") as batch_op:
        batch_op.add_column(sa.Column("published_revision_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("file_revision_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_questions_published_revision_id_question_revisions"),
            "question_revisions",
            ["published_revision_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_questions_file_revision_id_question_revisions"),
            "question_revisions",
            ["file_revision_id"],
            ["id"],
            ondelete="RESTRICT",
        )
    with op.batch_alter_table("question_revisions") as batch_op:
        batch_op.add_column(sa.Column("module_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("vignette_id", sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f("ix_question_revisions_module_id"), ["module_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_question_revisions_vignette_id"), ["vignette_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_question_revisions_vignette_id_vignettes"),
            "vignettes",
            ["vignette_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_question_revisions_module_id_modules"), "modules", ["module_id"], ["id"], ondelete="RESTRICT"
        )
    with op.batch_alter_table("quizzes") as batch_op:
        batch_op.add_column(sa.Column("published_revision_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("file_revision_id", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_quizzes_file_revision_id_quiz_settings_revisions"),
            "quiz_settings_revisions",
            ["file_revision_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_quizzes_published_revision_id_quiz_settings_revisions"),
            "quiz_settings_revisions",
            ["published_revision_id"],
            ["id"],
            ondelete="RESTRICT",
        )
    with op.batch_alter_table("attempts") as batch_op:
        batch_op.add_column(sa.Column("settings_id", sa.Integer(), nullable=True))
    with op.batch_alter_table("attempt_items") as batch_op:
        batch_op.add_column(sa.Column("vignette_revision_id", sa.Integer(), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_attempt_items_vignette_revision_id"), ["vignette_revision_id"], unique=False
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_attempt_items_vignette_revision_id_vignette_revisions"),
            "vignette_revisions",
            ["vignette_revision_id"],
            ["id"],
            ondelete="RESTRICT",
        )


def _publish_latest(conn: sa.Connection, items: str, revisions: str, key: str) -> None:
    """Point every item at its highest-numbered revision, as published and as matching the files."""
    conn.execute(
        sa.text(
            f"UPDATE {items} SET published_revision_id = (SELECT r.id FROM {revisions} r WHERE r.{key} = {items}.id"
            f" ORDER BY r.number DESC LIMIT 1)"
        )
    )
    conn.execute(sa.text(f"UPDATE {items} SET file_revision_id = published_revision_id"))


def _move_data() -> None:
    conn = op.get_bind()
    _publish_latest(conn, "modules", "module_revisions", "module_id")
    _publish_latest(conn, "questions", "question_revisions", "question_id")
    columns = ", ".join(SETTINGS)
    conn.execute(
        sa.text(
            f"INSERT INTO quiz_settings_revisions (quiz_id, number, {columns}, allow_extension, created_at)"
            f" SELECT id, 1, {columns}, :no, :now FROM quizzes"
        ),
        {"no": False, "now": kaptrain.db.utcnow()},
    )
    conn.execute(
        sa.text(
            "UPDATE quizzes SET published_revision_id = (SELECT s.id FROM quiz_settings_revisions s"
            " WHERE s.quiz_id = quizzes.id)"
        )
    )
    conn.execute(sa.text("UPDATE quizzes SET file_revision_id = published_revision_id"))
    conn.execute(
        sa.text(
            "UPDATE attempts SET settings_id = (SELECT q.published_revision_id FROM quizzes q"
            " WHERE q.id = attempts.quiz_id)"
        )
    )
    conn.execute(
        sa.text(
            "UPDATE question_revisions SET module_id = (SELECT m.id FROM modules m JOIN quizzes z ON z.course_id ="
            " m.course_id JOIN questions q ON q.quiz_id = z.id WHERE q.id = question_revisions.question_id"
            " AND m.slug = question_revisions.module_slug) WHERE module_slug IS NOT NULL"
        )
    )
    _share_vignettes(conn)


def _share_vignettes(conn: sa.Connection) -> None:
    """One vignette per (bank, key); one revision per distinct title and text, in the order they appeared."""
    rows = conn.execute(
        sa.text(
            "SELECT r.id, q.quiz_id, r.vignette_key, r.vignette_title, r.vignette_text FROM question_revisions r"
            " JOIN questions q ON q.id = r.question_id WHERE r.vignette_key IS NOT NULL ORDER BY r.id"
        )
    ).all()
    vignettes: dict[tuple[int, str], int] = {}
    texts: dict[tuple[int, str, str], int] = {}  # (vignette, title, text) -> revision id
    numbers: dict[int, int] = {}
    by_question_revision: dict[int, int] = {}
    for rev_id, quiz_id, key, title, text in rows:
        vid = vignettes.get((quiz_id, key))
        if vid is None:
            vid = conn.execute(
                sa.text("INSERT INTO vignettes (quiz_id, key) VALUES (:q, :k) RETURNING id"), {"q": quiz_id, "k": key}
            ).scalar_one()
            vignettes[(quiz_id, key)] = vid
        vrev = texts.get((vid, title or "", text or ""))
        if vrev is None:
            numbers[vid] = numbers.get(vid, 0) + 1
            vrev = conn.execute(
                sa.text(
                    "INSERT INTO vignette_revisions (vignette_id, number, title, text, created_at)"
                    " VALUES (:v, :n, :title, :text, :now) RETURNING id"
                ),
                {"v": vid, "n": numbers[vid], "title": title or key, "text": text or "", "now": kaptrain.db.utcnow()},
            ).scalar_one()
            texts[(vid, title or "", text or "")] = vrev
        conn.execute(sa.text("UPDATE question_revisions SET vignette_id = :v WHERE id = :r"), {"v": vid, "r": rev_id})
        conn.execute(
            sa.text("UPDATE vignettes SET published_revision_id = :r, file_revision_id = :r WHERE id = :v"),
            {"r": vrev, "v": vid},
        )
        by_question_revision[rev_id] = vrev
    for rev_id, vrev in by_question_revision.items():
        conn.execute(
            sa.text("UPDATE attempt_items SET vignette_revision_id = :v WHERE question_revision_id = :r"),
            {"v": vrev, "r": rev_id},
        )


def _drop_columns() -> None:
    with op.batch_alter_table("question_revisions") as batch_op:
        batch_op.drop_column("module_slug")
        batch_op.drop_column("vignette_title")
        batch_op.drop_column("vignette_key")
        batch_op.drop_column("vignette_text")
    with op.batch_alter_table("quizzes") as batch_op:
        for column in SETTINGS:
            batch_op.drop_column(column)
    with op.batch_alter_table("attempts") as batch_op:
        batch_op.alter_column("settings_id", existing_type=sa.Integer(), nullable=False)
        batch_op.create_index(batch_op.f("ix_attempts_settings_id"), ["settings_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_attempts_settings_id_quiz_settings_revisions"),
            "quiz_settings_revisions",
            ["settings_id"],
            ["id"],
            ondelete="RESTRICT",
        )


def upgrade() -> None:
    """Apply this migration."""
    # SQLite's batch mode rebuilds tables and may not carry a partial index's WHERE: drop it, then recreate.
    op.drop_index("uq_attempts_one_open", table_name="attempts")
    _create_tables()
    _add_columns()
    _move_data()
    _drop_columns()
    op.create_index(
        "uq_attempts_one_open",
        "attempts",
        ["user_id", "quiz_id"],
        unique=True,
        sqlite_where=OPEN_ATTEMPT,
        postgresql_where=OPEN_ATTEMPT,
    )


def downgrade() -> None:
    """Revert this migration: quiz rules go back from their published revision; drafts and uploads are lost."""
    conn = op.get_bind()
    op.drop_index("uq_attempts_one_open", table_name="attempts")
    types = {"title": sa.String(length=300), "reveal_answers": sa.String(length=20), "partial_credit": sa.Boolean()}
    with op.batch_alter_table("quizzes") as batch_op:
        for column in SETTINGS:
            batch_op.add_column(sa.Column(column, types.get(column, sa.Integer()), nullable=True))
    for column in SETTINGS:
        conn.execute(
            sa.text(
                f"UPDATE quizzes SET {column} = (SELECT s.{column} FROM quiz_settings_revisions s"
                " WHERE s.id = quizzes.published_revision_id)"
            )
        )
    with op.batch_alter_table("question_revisions") as batch_op:
        batch_op.add_column(sa.Column("module_slug", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("vignette_key", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("vignette_title", sa.String(length=300), nullable=True))
        batch_op.add_column(sa.Column("vignette_text", sa.Text(), nullable=True))
    conn.execute(
        sa.text(
            "UPDATE question_revisions SET module_slug = (SELECT m.slug FROM modules m WHERE m.id = question_revisions.module_id)"
        )
    )
    for column, source in (("vignette_key", "v.key"), ("vignette_title", "r.title"), ("vignette_text", "r.text")):
        conn.execute(
            sa.text(
                f"UPDATE question_revisions SET {column} = (SELECT {source} FROM vignettes v JOIN vignette_revisions r"
                " ON r.id = v.published_revision_id WHERE v.id = question_revisions.vignette_id)"
            )
        )
    with op.batch_alter_table("quizzes") as batch_op:
        for column in SETTINGS:
            if column != "time_limit_minutes":
                batch_op.alter_column(column, existing_type=types.get(column, sa.Integer()), nullable=False)
        batch_op.drop_constraint(
            batch_op.f("fk_quizzes_published_revision_id_quiz_settings_revisions"), type_="foreignkey"
        )
        batch_op.drop_constraint(batch_op.f("fk_quizzes_file_revision_id_quiz_settings_revisions"), type_="foreignkey")
        batch_op.drop_column("file_revision_id")
        batch_op.drop_column("published_revision_id")
    with op.batch_alter_table("questions") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_questions_file_revision_id_question_revisions"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("fk_questions_published_revision_id_question_revisions"), type_="foreignkey"
        )
        batch_op.drop_column("file_revision_id")
        batch_op.drop_column("published_revision_id")
    with op.batch_alter_table("question_revisions") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_question_revisions_module_id_modules"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_question_revisions_vignette_id_vignettes"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_question_revisions_vignette_id"))
        batch_op.drop_index(batch_op.f("ix_question_revisions_module_id"))
        batch_op.drop_column("vignette_id")
        batch_op.drop_column("module_id")
    with op.batch_alter_table("modules") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_modules_published_revision_id_module_revisions"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_modules_file_revision_id_module_revisions"), type_="foreignkey")
        batch_op.drop_column("file_revision_id")
        batch_op.drop_column("published_revision_id")
    with op.batch_alter_table("module_revisions") as batch_op:
        batch_op.drop_column("summary")
    with op.batch_alter_table("attempts") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_attempts_settings_id_quiz_settings_revisions"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_attempts_settings_id"))
        batch_op.drop_column("settings_id")
    with op.batch_alter_table("attempt_items") as batch_op:
        batch_op.drop_constraint(
            batch_op.f("fk_attempt_items_vignette_revision_id_vignette_revisions"), type_="foreignkey"
        )
        batch_op.drop_index(batch_op.f("ix_attempt_items_vignette_revision_id"))
        batch_op.drop_column("vignette_revision_id")
    with op.batch_alter_table("vignettes") as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_vignettes_file_revision_id_vignette_revisions"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("fk_vignettes_published_revision_id_vignette_revisions"), type_="foreignkey"
        )
    op.drop_table("drafts")
    op.drop_table("vignette_revisions")
    op.drop_table("vignettes")
    op.drop_table("quiz_settings_revisions")
    op.drop_table("uploads")
    op.create_index(
        "uq_attempts_one_open",
        "attempts",
        ["user_id", "quiz_id"],
        unique=True,
        sqlite_where=OPEN_ATTEMPT,
        postgresql_where=OPEN_ATTEMPT,
    )
