"""Certificate PDF: print render times (first and warm, in the renderer vs in process) and write the sample PNG.

    .venv/bin/python bench/certificate_pdf.py                      # times only
    .venv/bin/python bench/certificate_pdf.py --png docs/screenshots/certificate-sample.png

The PNG is page 1 at 60 dpi (pdftoppm), the image shown in the README.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kaptrain import create_app  # noqa: E402
from kaptrain.certificates import pdf  # noqa: E402
from kaptrain.certificates.pdf import CertificateView, CreditDesignation, certificate_pdf  # noqa: E402

SAMPLE = CertificateView(
    holder_name="Maya R. Castellanos-Whitfield",
    holder_credential="PsyD, LMFT",
    licence_number="PSY 31522 (California)",
    course_title="Foundations of Ketamine-Assisted Psychotherapy: Safety, Set and Setting, and Integration",
    completed_on=date(2026, 3, 12),
    ce_hours=Decimal("8"),
    designations=[
        CreditDesignation(
            "APA",
            Decimal("8"),
            "Kaptrain Institute is approved by the American Psychological Association to sponsor continuing "
            "education for psychologists. Kaptrain Institute maintains responsibility for this program and its "
            "content.",
            "1234",
        ),
        CreditDesignation(
            "ASWB ACE",
            Decimal("8"),
            "Kaptrain Institute is approved as an ACE provider to offer social work continuing education by the "
            "Association of Social Work Boards (ASWB) Approved Continuing Education (ACE) program.",
            "5678",
        ),
        CreditDesignation(
            "NBCC",
            Decimal("8"),
            "Kaptrain Institute has been approved by NBCC as an Approved Continuing Education Provider. Programs "
            "that do not qualify for NBCC credit are clearly identified.",
            "ACEP 9012",
        ),
    ],
    delivery_format="Enduring online material",
    provider="Kaptrain Institute",
    accreditation_statement="This activity was planned and implemented in accordance with the standards of the "
    "accrediting bodies named below. Credit is awarded only for completing every module and passing the final "
    "assessment.",
    signatory_name="Elena Marsh, PhD",
    signatory_title="Director of Continuing Education",
    number="KAP-2026-000042",
    verification_url="https://kaptrain.example/verify/KAP-2026-000042",
    issued_on=date(2026, 3, 14),
    status_note="Sample certificate: not valid for credit",
)
ROUNDS = 15


def main() -> None:
    """Time the certificate render and optionally write the sample PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--png", type=Path, help="write page 1 of the sample certificate here (60 dpi)")
    parser.add_argument("--page-size", default="A4", choices=pdf.PAGE_SIZES)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app({"DATABASE_URL": f"sqlite:///{tmp}/bench.sqlite3", "SECRET_KEY": "bench"})
        with app.app_context():
            start = time.perf_counter()
            data = certificate_pdf(SAMPLE, page_size=args.page_size)
            first_ms = (time.perf_counter() - start) * 1000
            print(f"first render (cold process, in a thread; the renderer forked later inherits it): {first_ms:.0f} ms")
            for label, can_fork in (("renderer (forked once)", True), ("worker thread", False)):
                pdf._can_fork = lambda can_fork=can_fork: can_fork  # type: ignore[misc]
                samples = []
                for _ in range(ROUNDS):
                    start = time.perf_counter()
                    certificate_pdf(SAMPLE, page_size=args.page_size)
                    samples.append((time.perf_counter() - start) * 1000)
                print(
                    f"warm, {label}: median {statistics.median(samples):.0f} ms, "
                    f"min {min(samples):.0f} ms, max {max(samples):.0f} ms ({ROUNDS} renders)"
                )
            print(f"PDF size: {len(data) / 1024:.1f} KiB")
        if args.png:
            pdf_path = Path(tmp) / "sample.pdf"
            pdf_path.write_bytes(data)
            subprocess.run(  # noqa: S603
                ["pdftoppm", "-png", "-r", "60", "-singlefile", str(pdf_path), str(args.png.with_suffix(""))],  # noqa: S607
                check=True,
            )
            print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
