"""Running Digital Bazaar's verifier (node/verify.mjs) from tests: the fixture that finds Node.js, and one run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

NODE_DIR = Path(__file__).parent / "node"
VERIFY = NODE_DIR / "verify.mjs"
INSTALL = "npm ci --prefix tests/credentials/node --no-audit --no-fund"


@pytest.fixture(scope="module")
def node() -> str:
    """The node executable, once the verifier's npm packages are installed."""
    executable = shutil.which("node")
    if executable is None:
        missing = "node is not installed"
    elif not (NODE_DIR / "node_modules").is_dir():
        missing = f"tests/credentials/node/node_modules is missing (run `{INSTALL}`)"
    else:
        return executable
    if os.environ.get("CI"):
        pytest.fail(missing)  # .ci/run installs them, so their absence there is a real failure
    pytest.skip(f"{missing}: the Node.js interoperability tests need Node.js 20 and the verifier's packages")


def run_node_verifier(
    node: str,
    folder: Path,
    credential: Any,
    dids: dict[str, Any],
    *,
    status_lists: tuple[dict[str, Any], ...] = (),
    now: str | None = None,
) -> dict[str, Any]:
    """Write the credential, DID documents and status lists to files in folder; run verify.mjs on them."""
    credential_file = folder / "credential.json"
    credential_file.write_text(json.dumps(credential, ensure_ascii=False), encoding="utf-8")
    dids_file = folder / "dids.json"
    dids_file.write_text(json.dumps(dids), encoding="utf-8")
    args = [node, str(VERIFY), str(credential_file), "--dids", str(dids_file)]
    for number, status_list in enumerate(status_lists):
        list_file = folder / f"status-list-{number}.json"
        list_file.write_text(json.dumps(status_list), encoding="utf-8")
        args += ["--status-list", str(list_file)]
    if now is not None:
        args += ["--now", now]
    result = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
    assert result.returncode in (0, 1), result.stderr
    output: dict[str, Any] = json.loads(result.stdout)
    assert output["verified"] == (result.returncode == 0)
    return output
