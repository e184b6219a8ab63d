"""Browser-test helpers: register, log in, and read an attempt's answer key from the server side."""

from __future__ import annotations

import itertools

from flask import Flask
from sqlalchemy import select

from kaptrain.accounts.models import User
from kaptrain.quizzes.models import Attempt, AttemptStatus

_seq = itertools.count(1)
PASSWORD = "browser test passphrase"


def register(page, name: str = "Robin Browser, LMFT") -> str:  # type: ignore[no-untyped-def]
    """Create an account through the form; returns its email."""
    email = f"browser{next(_seq)}@example.org"
    page.goto("/register")
    page.get_by_label("Full name, as it should appear on your certificate").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Profession").select_option("Marriage and family therapist")
    page.get_by_label("Credential (e.g. LPC, LCSW, PhD, MD, RN)").fill("LMFT")
    page.get_by_label("Password (at least 12 characters)").fill(PASSWORD)
    page.get_by_label("Repeat the password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    return email


def log_in(page, email: str, password: str) -> None:  # type: ignore[no-untyped-def]
    """Log in through the form."""
    page.goto("/login")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()


def enrol_and_acknowledge(page) -> None:  # type: ignore[no-untyped-def]
    """Enrol in the KAP course and acknowledge its disclosures (lands on module 1)."""
    page.goto("/courses/kap-foundations")
    page.get_by_role("button", name="Enrol in this course").click()
    page.get_by_role("button", name="I have read and understood these disclosures").click()


def answer_key(app: Flask, email: str, right: bool = True) -> dict[int, list[int]]:
    """For the user's open attempt: item id -> shown positions to choose (the right or a wrong answer)."""
    database = app.extensions["kaptrain.db"]
    session = database.new_session()
    try:
        user = session.scalar(select(User).where(User.email == email))
        attempt = session.scalar(
            select(Attempt).where(Attempt.user_id == user.id, Attempt.status == AttemptStatus.OPEN)
        )
        key = {}
        for item in attempt.items:
            correct = {o["id"] for o in item.revision.options if o["correct"]}
            positions = [i for i, oid in enumerate(item.option_order) if (oid in correct) == right]
            key[item.id] = positions if right else positions[:1]
        return key
    finally:
        session.close()
