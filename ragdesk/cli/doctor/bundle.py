"""The doctor's check of the installed program itself: a bundle's files against the SHA256SUMS
manifest its build wrote (core/bundle.py). A development install has no manifest: skipped."""

from __future__ import annotations

from ragdesk.cli.doctor.checks import FAIL, PASS, SKIP, Check, Context
from ragdesk.core import bundle as manifest

REINSTALL = ("reinstall RagDesk from a copy whose digest matches the published one"
             " (installer/README.md, 'Checking the bundle'); keep this copy for investigation")


def bundle(ctx: Context) -> Check:
    """A flipped byte in any bundled file, a missing file, or one that was not shipped is named."""
    root = manifest.bundle_root()
    if root is None:
        return Check("bundle", SKIP, "not a bundle, skipped (a development or pip install has no manifest)")
    try:
        result = manifest.verify(root)
    except manifest.ManifestError as exc:
        return Check("bundle", FAIL, str(exc), REINSTALL, {"root": str(root)})
    details = {"root": str(root), "files": result.checked, "manifest_sha256": result.manifest_digest,
               "changed": result.changed, "missing": result.missing, "unlisted": result.unlisted}
    if not result.ok:
        return Check("bundle", FAIL, f"the bundle differs from its manifest: {result.problems()}",
                     REINSTALL, details)
    return Check("bundle", PASS, f"{result.checked} bundled files match {manifest.MANIFEST}"
                 f" (its SHA-256 {result.manifest_digest[:16]}…)", details=details)
