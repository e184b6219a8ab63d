"""Locust scenario: learners log in, read modules, send heartbeats, start, save and submit quizzes.

Run by bench/load.py (`make load`), which seeds the accounts, starts gunicorn and checks the database after;
see docs/load-testing.md. Each simulated learner is one of the seeded accounts (LOAD_EMAIL_PATTERN % n),
appears from an address of its own in the benchmarking range 198.18.0.0/15 (X-Forwarded-For, one trusted
proxy), so per-address login limits apply per learner as they would in production.

What the clients saw is written to LOAD_CLIENT_REPORT at the end: every attempt whose submission came back
with a result page (and its score), the double submissions sent, and every 5xx response."""

from __future__ import annotations

import html
import itertools
import json
import os
import random
import re
import threading
import time
from typing import Any
from urllib.parse import urlencode

import gevent
from locust import between, events, task
from locust.contrib.fasthttp import FastHttpUser
from locust.env import Environment

COURSE = json.loads(os.environ.get("LOAD_COURSE", "{}"))  # {"slug": ..., "steps": [{"module": ..., "quiz": ...}]}
EMAIL_PATTERN = os.environ.get("LOAD_EMAIL_PATTERN", "load-learner-%04d@example.org")
PASSWORD = os.environ.get("LOAD_PASSWORD", "")
REPORT = os.environ.get("LOAD_CLIENT_REPORT", "build/load/client.json")
DOUBLE_SUBMIT_SHARE = float(os.environ.get("LOAD_DOUBLE_SUBMIT_SHARE", "0.2"))

FORM = "application/x-www-form-urlencoded"
CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')
HEARTBEAT = re.compile(r'data-heartbeat-url="([^"]+)"[^>]*data-csrf="([^"]+)"')
OPTION = re.compile(r'<input type="(radio|checkbox)" name="(q-\d+)" value="([^"]+)"')
ATTEMPT_URL = re.compile(r"/attempts/(\d+)$")
RESULT_URL = re.compile(r"/attempts/(\d+)/result$")
ERROR_SUMMARY = re.compile(r'id="error-summary">(.*?)</div>', re.S)
SCORE = re.compile(r"(Passed|Not passed): (\d+)%")

_numbers = itertools.count(1)
_lock = threading.Lock()
graded: dict[int, int] = {}  # attempt id -> score shown on its result page
double_submits: list[dict[str, Any]] = []
server_errors: list[str] = []
timings: list[tuple[float, float, str]] = []  # (when it ended, milliseconds, request) for the runner's phases
other_answers: list[str] = []  # submissions answered with something other than the result page
counters = {"logins": 0, "heartbeats": 0, "module_reads": 0, "starts": 0, "saves": 0, "quiz_closed": 0}


def _count(name: str) -> None:
    with _lock:
        counters[name] += 1


@events.request.add_listener
def _note_request(request_type: str, name: str, response_time: float, response: Any = None, **_kw: Any) -> None:
    with _lock:
        timings.append((round(time.time(), 3), round(response_time, 1), f"{request_type} {name}"))
        if response is not None and getattr(response, "status_code", 0) >= 500:
            server_errors.append(f"{request_type} {name} -> {response.status_code}")


@events.test_stop.add_listener
def _write_report(environment: Environment, **_kw: Any) -> None:
    os.makedirs(os.path.dirname(REPORT) or ".", exist_ok=True)
    with _lock, open(REPORT, "w", encoding="utf-8") as f:
        json.dump(
            {
                "graded": {str(k): v for k, v in graded.items()},
                "double_submits": double_submits,
                "server_errors": server_errors,
                "other_answers": other_answers,
                "timings": timings,
                "counters": counters,
            },
            f,
            indent=1,
        )


class Learner(FastHttpUser):
    """One seeded, enrolled learner working through the course (geventhttpclient: little CPU per request, which
    matters when the clients share two cores with the server)."""

    # Redirects are never followed: the page a POST leads to is requested (and measured) on its own. (Not
    # allow_redirects=False per request: locust toggles that on the shared client, which races between the two
    # halves of a double submission.)
    max_redirects = 0
    # Seconds between a learner's actions: a reader compressed about threefold (the page beats every 30 s).
    wait_time = between(*(float(x) for x in os.environ.get("LOAD_WAIT", "5,15").split(",")))

    def on_start(self) -> None:
        """Log in as the next seeded account, from an address of its own."""
        self.number = (next(_numbers) - 1) % int(os.environ.get("LOAD_USERS", "200")) + 1  # a seeded account
        self.address = f"198.18.{self.number // 250}.{self.number % 250 + 1}"
        self.step = 0  # index into COURSE["steps"]: the module the learner is on
        self.heartbeat: tuple[str, str] | None = None
        for _ in range(3):  # a failed login (reported as a failure) is tried again as the same learner
            page = self._get("/login", "/login")
            response = self._post(
                "/login",
                "/login [POST]",
                data={"email": EMAIL_PATTERN % self.number, "password": PASSWORD, "csrf_token": _csrf(page.text)},
            )
            if response.status_code == 302:
                _count("logins")
                return
        raise RuntimeError(f"learner {self.number} could not log in")

    def _get(self, url: str, name: str) -> Any:
        return self.client.get(url, name=name, headers={"X-Forwarded-For": self.address})

    def _post(self, url: str, name: str, headers: dict[str, str] | None = None, data: Any = None) -> Any:
        """A form POST (its redirect is not followed: see max_redirects)."""
        headers = {"X-Forwarded-For": self.address, "Content-Type": FORM, **(headers or {})}
        # Encoded here: geventhttpclient would send a list of checked boxes as its repr.
        body = urlencode(data or {}, doseq=True)
        return self.client.post(url, name=name, headers=headers, data=body)

    def _module(self) -> str:
        return f"/courses/{COURSE['slug']}/modules/{COURSE['steps'][self.step]['module']}"

    @task(3)
    def read_module(self) -> None:
        """Open the current module's page (records the visit; seat time starts)."""
        page = self._get(self._module(), "/courses/[c]/modules/[m]")
        found = HEARTBEAT.search(page.text or "")
        if found:
            self.heartbeat = (html.unescape(found.group(1)), found.group(2))
            _count("module_reads")

    @task(6)
    def send_heartbeat(self) -> None:
        """What the page's script sends while the learner is active on it."""
        if self.heartbeat is None:
            self.read_module()
            return
        url, token = self.heartbeat
        self._post(url, "/courses/[c]/modules/[m]/heartbeat", headers={"X-CSRFToken": token})
        _count("heartbeats")

    @task(1)
    def take_quiz(self) -> None:
        """Start the module's quiz, save answers as the script does, submit; sometimes submit twice at once."""
        if self.heartbeat is None:
            self.read_module()
        quiz_url = f"/courses/{COURSE['slug']}/quizzes/{COURSE['steps'][self.step]['quiz']}"
        page = self._get(quiz_url, "/courses/[c]/quizzes/[q]")
        if f'action="{quiz_url}/start"' not in (page.text or ""):
            _count("quiz_closed")  # attempts used up for now (cooldown), or already passed
            return
        started = self._post(
            f"{quiz_url}/start", "/courses/[c]/quizzes/[q]/start", data={"csrf_token": _csrf(page.text)}
        )
        match = ATTEMPT_URL.search(started.headers.get("Location", "") if started.headers else "")
        if not match:
            return
        _count("starts")
        attempt_id = int(match.group(1))
        questions = self._get(f"/attempts/{attempt_id}", "/attempts/[id]")
        token = _csrf(questions.text or "")
        answers = _choose(questions.text or "")
        self._post(
            f"/attempts/{attempt_id}/save",
            "/attempts/[id]/save",
            headers={"Accept": "application/json", "X-CSRFToken": token},
            data={**answers, "csrf_token": token},
        )
        _count("saves")
        form = {**answers, "csrf_token": token}
        if random.random() < DOUBLE_SUBMIT_SHARE:
            # A double click, or a replay: two submissions of the same attempt at the same moment.
            jobs = [gevent.spawn(self._submit, attempt_id, form) for _ in range(2)]
            gevent.joinall(jobs)
            scores = [j.value for j in jobs]
            with _lock:
                double_submits.append({"attempt": attempt_id, "scores": scores})
        else:
            self._submit(attempt_id, form)

    def _submit(self, attempt_id: int, form: dict[str, Any]) -> int | None:
        response = self._post(f"/attempts/{attempt_id}/submit", "/attempts/[id]/submit", data=form)
        location = response.headers.get("Location", "") if response.headers else ""
        if not RESULT_URL.search(location):
            with _lock:
                summary = ERROR_SUMMARY.search(response.text or "")
                said = re.sub(r"<[^>]+>|\s+", " ", summary.group(1)).strip() if summary else ""
                other_answers.append(f"attempt {attempt_id}: {response.status_code} {location} {said}".strip())
            return None
        result = self._get(f"/attempts/{attempt_id}/result", "/attempts/[id]/result")
        found = SCORE.search(result.text or "")
        score = int(found.group(2)) if found else -1
        with _lock:
            graded[attempt_id] = score
        if found and found.group(1) == "Passed" and self.step + 1 < len(COURSE["steps"]):
            self.step += 1  # the next module is open now
            self.heartbeat = None
        return score


def _csrf(page: str) -> str:
    found = CSRF.search(page)
    return found.group(1) if found else ""


def _choose(page: str) -> dict[str, list[str]]:
    """Any valid answer to every question: one option for single choice, one or two for multiple."""
    options: dict[str, tuple[str, list[str]]] = {}
    for kind, name, value in OPTION.findall(page):
        options.setdefault(name, (kind, []))[1].append(html.unescape(value))
    return {
        name: random.sample(values, 1 if kind == "radio" else random.randint(1, min(2, len(values))))
        for name, (kind, values) in options.items()
    }
