"""The official ALTO v4 and PAGE XML 2019 schemas, taken from packages on PyPI that ship them.

No package made for validation ships both, so the wheels are downloaded once (not installed:
only their schema files are read) into var/cache/schemas: htrflow carries ALTO 4.4, OCR-D's
validators carry PAGE 2019-07-15 and the W3C XLink schema that ALTO imports.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import xmlschema

CACHE = Path(__file__).resolve().parents[1] / "var" / "cache" / "schemas"
WHEELS = {
    "alto-4-4.xsd": ("htrflow==0.2.6", "htrflow/serialization/schemas/alto-4-4.xsd"),
    "pagecontent-2019-07-15.xsd": ("ocrd-validators==2.67.1", "ocrd_validators/page.xsd"),
    "xlink.xsd": ("ocrd-validators==2.67.1", "ocrd_validators/xlink.xsd"),
}


def _fetch() -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        requirements = sorted({requirement for requirement, _ in WHEELS.values()})
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-deps",
                "--only-binary=:all:",
                "-d",
                folder,
                *requirements,
            ],
            check=True,
        )
        for target, (requirement, member) in WHEELS.items():
            name = requirement.split("==")[0].replace("-", "_")
            wheel = next(Path(folder).glob(f"{name}-*.whl"))
            with zipfile.ZipFile(wheel) as archive:
                (CACHE / target).write_bytes(archive.read(member))


def load_schemas() -> dict[str, xmlschema.XMLSchema]:
    if not all((CACHE / name).exists() for name in WHEELS):
        _fetch()
    return {
        "alto": xmlschema.XMLSchema(
            CACHE / "alto-4-4.xsd", locations={"http://www.w3.org/1999/xlink": str(CACHE / "xlink.xsd")}
        ),
        "page": xmlschema.XMLSchema(CACHE / "pagecontent-2019-07-15.xsd"),
    }
