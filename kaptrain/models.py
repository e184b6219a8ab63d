"""Imports every model so that Base.metadata is complete (Alembic and tests need that)."""

from kaptrain.accounts.models import AccountToken, RecoveryCode, User
from kaptrain.activity import ActivityClock
from kaptrain.admin.settings import Setting
from kaptrain.audit import AuditEntry
from kaptrain.authoring.models import Draft, Upload
from kaptrain.certificates.models import Attestation, Certificate, CertificateFile, Evaluation, StatusList
from kaptrain.content.models import Course, Module, ModuleRevision
from kaptrain.courses.models import Enrolment, ModuleProgress
from kaptrain.db import Base
from kaptrain.pagecache import CacheEpoch
from kaptrain.quizzes.models import (
    Accommodation,
    AccommodationChange,
    Attempt,
    AttemptItem,
    Question,
    QuestionRevision,
    Quiz,
    QuizSettingsRevision,
    Vignette,
    VignetteRevision,
)

__all__ = [
    "CacheEpoch",
    "AccountToken",
    "Accommodation",
    "AccommodationChange",
    "ActivityClock",
    "Attestation",
    "AuditEntry",
    "Certificate",
    "CertificateFile",
    "Evaluation",
    "Attempt",
    "AttemptItem",
    "Base",
    "Course",
    "Draft",
    "Enrolment",
    "Module",
    "ModuleProgress",
    "ModuleRevision",
    "Question",
    "QuestionRevision",
    "Quiz",
    "QuizSettingsRevision",
    "RecoveryCode",
    "Setting",
    "StatusList",
    "Upload",
    "User",
    "Vignette",
    "VignetteRevision",
]
