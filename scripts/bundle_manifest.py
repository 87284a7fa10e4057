"""After a bundle build: write what the bundle holds into the bundle, from what is in it.

Run by scripts/build-bundle with the build environment's Python, once dist/ragdesk/ is complete:

  * `requirements-bundle.lock`: `pip freeze` of the build environment (pinned versions), with
    the Python, PyInstaller and git commit it was built from; also copied to
    installer/requirements-bundle.lock in the repository, where a change shows as a diff;
  * `sbom.cdx.json`: a CycloneDX 1.6 SBOM (cyclonedx-python-lib writes and validates the format)
    of what the bundle actually carries: the Python distributions whose files are in it (found by
    matching the bundle's files and the modules in its PYZ archive against each installed
    distribution's RECORD), with versions, licences and, nested, their shared libraries; the
    shared libraries PyInstaller copied from the system (with the Debian package they came from
    when dpkg knows the file); CPython; the built-in embedder's weights with their SHA-256;
  * `SHA256SUMS` last: every file of the bundle (including the two above), in sha256sum's
    format (ragdesk/core/bundle.py), which `ragdesk --self-test` and `doctor` check.

Prints the manifest's own SHA-256: the bundle's digest, to publish with the release.
Usage: python scripts/bundle_manifest.py [BUNDLE_DIR]
"""

from __future__ import annotations

import argparse
import importlib.metadata as md
import platform
import re
import shutil
import subprocess
import sys
import sysconfig
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from cyclonedx.contrib.license.factories import LicenseFactory  # noqa: E402
from cyclonedx.model import HashAlgorithm, HashType, Property  # noqa: E402
from cyclonedx.model.bom import Bom, BomMetaData  # noqa: E402
from cyclonedx.model.component import Component, ComponentType  # noqa: E402
from cyclonedx.output.json import JsonV1Dot6  # noqa: E402
from cyclonedx.schema import SchemaVersion  # noqa: E402
from cyclonedx.validation.json import JsonStrictValidator  # noqa: E402
from packageurl import PackageURL  # noqa: E402

from ragdesk import __version__  # noqa: E402
from ragdesk.core.bundle import file_digest, write_manifest  # noqa: E402

LOCK = "requirements-bundle.lock"
SBOM = "sbom.cdx.json"
SHARED_LIBRARY = re.compile(r"\.(so(\.\d+)*|dylib|dll)$")
WEIGHTS = "model.safetensors"


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True,
                             text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "ragdesk",
                                "resources", "ragdesk.spec", "installer/pyinstaller"],
                               capture_output=True, text=True).stdout
        return out + ("+local-changes" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_lock(bundle: Path, commit: str) -> str:
    freeze = subprocess.run([sys.executable, "-m", "pip", "freeze", "--exclude-editable", "--all"],
                            capture_output=True, text=True, check=True).stdout
    header = (f"# What built the RagDesk {__version__} bundle: `pip freeze` of the build environment.\n"
              f"# Python {platform.python_version()} ({platform.platform(terse=True)}),"
              f" PyInstaller {md.version('pyinstaller')}, ragdesk from git {commit}.\n"
              "# Reproduce: installer/README.md, 'Reproducing the build'.\n")
    text = header + freeze
    (bundle / LOCK).write_text(text, encoding="utf-8")
    (REPO / "installer" / LOCK).write_text(text, encoding="utf-8")
    return text


def pyz_modules(executable: Path) -> list[str]:
    """The module names in the bundle's PYZ archive (inside the executable's CArchive)."""
    from PyInstaller.archive.readers import CArchiveReader, ZlibArchiveReader

    carchive = CArchiveReader(str(executable))
    names: list[str] = []
    for name in carchive.toc:
        if name.endswith(".pyz"):
            data = carchive.extract(name)
            tmp = executable.parent.parent / f".{name}.tmp"
            tmp.write_bytes(data)
            try:
                names.extend(ZlibArchiveReader(str(tmp)).toc)
            finally:
                tmp.unlink()
    return names


def owners() -> tuple[dict[str, md.Distribution], dict[str, list[tuple[md.Distribution, Path]]]]:
    """Each installed file (relative to site-packages, '/'-separated) -> its distribution; and
    each shared library's file name -> the distributions' files of that name (PyInstaller moves
    a wheel's libraries, e.g. PySide6/Qt/lib/libQt6Core.so.6, to the bundle's top folder)."""
    site = Path(sysconfig.get_paths()["purelib"]).resolve()
    by_file: dict[str, md.Distribution] = {}
    by_name: dict[str, list[tuple[md.Distribution, Path]]] = defaultdict(list)
    for dist in md.distributions():
        for f in dist.files or []:
            path = Path(dist.locate_file(f)).resolve()
            if SHARED_LIBRARY.search(path.name):
                by_name[path.name].append((dist, path))
            try:
                rel = path.relative_to(site).as_posix()
            except ValueError:
                continue
            by_file.setdefault(rel, dist)
    return by_file, by_name


def moved_from(path: Path, by_name: dict[str, list[tuple[md.Distribution, Path]]]) -> md.Distribution | None:
    """The distribution that installed a library identical to `path` under the same name."""
    candidates = [(d, p) for d, p in by_name.get(path.name, []) if p.exists()]
    if not candidates:
        return None
    digest = file_digest(path)
    return next((d for d, p in candidates if file_digest(p) == digest), None)


def licences(dist: md.Distribution) -> list:  # type: ignore[type-arg]
    meta = dist.metadata
    factory = LicenseFactory()
    expression = meta.get("License-Expression")
    if expression:
        return [factory.make_from_string(expression)]
    classifiers = [c.split(" :: ")[-1] for c in meta.get_all("Classifier") or []
                   if c.startswith("License :: ") and c.count("::") >= 2]
    found = [factory.make_from_string(c) for c in dict.fromkeys(classifiers)]
    text = (meta.get("License") or "").strip()
    if not found and text and "\n" not in text and len(text) < 100:
        found = [factory.make_from_string(text)]
    return found


def sha256(path: Path) -> HashType:
    return HashType(alg=HashAlgorithm.SHA_256, content=file_digest(path))


def file_component(bundle: Path, path: Path) -> Component:
    """A shared library nested under what brought it (a distribution, CPython), with its digest."""
    rel = path.relative_to(bundle).as_posix()
    return Component(name=rel, type=ComponentType.LIBRARY, bom_ref=f"file:{rel}", hashes=[sha256(path)])


def system_origin(path: Path) -> tuple[str, str] | None:
    """The Debian package (name, version) that installed a library identical to `path`."""
    if shutil.which("dpkg-query") is None:
        return None
    digest = file_digest(path)
    for folder in ("/usr/lib/x86_64-linux-gnu", "/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
                   "/usr/lib", "/lib", "/usr/local/lib"):
        candidate = Path(folder) / path.name
        if not candidate.exists() or file_digest(candidate) != digest:
            continue
        for name in dict.fromkeys((str(candidate), str(candidate.resolve()),
                                   str(candidate.resolve()).replace("/usr/lib/", "/lib/", 1))):
            found = subprocess.run(["dpkg-query", "-S", name], capture_output=True, text=True)
            if found.returncode == 0:
                package = found.stdout.split(":", 1)[0].split(",")[0].strip()
                arch = found.stdout.split(":", 2)[1] if found.stdout.count(":") >= 2 else ""
                full = f"{package}:{arch}" if arch and " " not in arch else package
                version = subprocess.run(["dpkg-query", "-W", "-f=${Version}", full],
                                         capture_output=True, text=True).stdout.strip()
                return package, version
    return None


def build_sbom(bundle: Path, commit: str) -> tuple[Bom, dict[str, int]]:
    internal = bundle / "_internal"
    by_file, by_name = owners()
    files = [p for p in sorted(bundle.rglob("*")) if p.is_file()]
    owned: dict[str, list[Path]] = defaultdict(list)  # distribution name -> its bundled files
    unowned_libs: list[Path] = []
    python_libs: list[Path] = []  # CPython's own: lib-dynload extension modules, libpython
    dist_of: dict[str, md.Distribution] = {}
    for path in files:
        rel = path.relative_to(internal).as_posix() if internal in path.parents else None
        dist = by_file.get(rel) if rel is not None else None
        if dist is None and rel is not None and SHARED_LIBRARY.search(path.name) \
                and not rel.startswith("python3"):
            dist = moved_from(path, by_name)
        if dist is not None:
            dist_of[dist.metadata["Name"]] = dist
            owned[dist.metadata["Name"]].append(path)
        elif SHARED_LIBRARY.search(path.name):
            is_python = "/lib-dynload/" in path.as_posix() or path.name.startswith("libpython")
            (python_libs if is_python else unowned_libs).append(path)
    # Pure-Python modules live in the PYZ archive, not as files: match them by their source path.
    executable = bundle / "ragdesk"
    module_count: dict[str, int] = defaultdict(int)
    for module in pyz_modules(executable):
        stem = module.replace(".", "/")
        for candidate in (f"{stem}.py", f"{stem}/__init__.py"):
            dist = by_file.get(candidate)
            if dist is not None:
                dist_of[dist.metadata["Name"]] = dist
                module_count[dist.metadata["Name"]] += 1
                break

    bom = Bom()
    app = Component(name="ragdesk", version=__version__, type=ComponentType.APPLICATION,
                    bom_ref="ragdesk", purl=PackageURL("pypi", None, "ragdesk", __version__),
                    properties=[Property(name="ragdesk:git-commit", value=commit)])
    bom.metadata = BomMetaData(component=app, properties=[
        Property(name="ragdesk:build-python", value=platform.python_version()),
        Property(name="ragdesk:build-platform", value=platform.platform(terse=True)),
        Property(name="ragdesk:pyinstaller", value=md.version("pyinstaller")),
    ])
    python = Component(name="cpython", version=platform.python_version(), type=ComponentType.FRAMEWORK,
                       bom_ref="cpython", licenses=[LicenseFactory().make_from_string("PSF-2.0")],
                       purl=PackageURL("generic", None, "cpython", platform.python_version()),
                       components=[file_component(bundle, p) for p in python_libs])
    bom.components.add(python)
    figures = {"distributions": 0, "libraries": len(python_libs), "system_libraries": 0}
    for name in sorted(dist_of, key=str.lower):
        if name.lower() == "ragdesk":
            continue
        dist = dist_of[name]
        libs = [p for p in owned.get(name, []) if SHARED_LIBRARY.search(p.name)]
        nested = [file_component(bundle, p) for p in libs]
        figures["libraries"] += len(nested)
        bom.components.add(Component(
            name=name, version=dist.version, type=ComponentType.LIBRARY, bom_ref=f"pypi:{name}",
            purl=PackageURL("pypi", None, name.lower().replace("_", "-"), dist.version),
            licenses=licences(dist), components=nested,
            properties=[Property(name="ragdesk:bundled-files", value=str(len(owned.get(name, [])))),
                        Property(name="ragdesk:bundled-modules", value=str(module_count.get(name, 0)))],
        ))
        figures["distributions"] += 1
    for path in unowned_libs:
        rel = path.relative_to(bundle).as_posix()
        origin = system_origin(path)
        version = origin[1] if origin else None
        purl = (PackageURL("deb", "debian", origin[0], origin[1], {"arch": platform.machine()})
                if origin else None)
        props = [Property(name="ragdesk:file", value=rel)]
        bom.components.add(Component(name=path.name, version=version, type=ComponentType.LIBRARY,
                                     bom_ref=f"file:{rel}", hashes=[sha256(path)], purl=purl,
                                     properties=props))
        figures["system_libraries"] += 1
    weights = [p for p in files if p.name == WEIGHTS]
    for path in weights:
        owner = next((n for n, ps in owned.items() if path in ps), None)
        dist = dist_of.get(owner) if owner else None
        bom.components.add(Component(
            name=owner or path.parent.name, version=dist.version if dist else None,
            type=ComponentType.MACHINE_LEARNING_MODEL, bom_ref=f"model:{path.relative_to(bundle).as_posix()}",
            description="the built-in embedder's weights (all-MiniLM-L6-v2)", hashes=[sha256(path)],
            licenses=licences(dist) if dist else None,
            properties=[Property(name="ragdesk:file", value=path.relative_to(bundle).as_posix())],
        ))
    figures["models"] = len(weights)
    bom.register_dependency(app, list(bom.components))
    return bom, figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", nargs="?", type=Path, default=REPO / "dist" / "ragdesk")
    args = parser.parse_args()
    bundle: Path = args.bundle.resolve()
    if not (bundle / "ragdesk").exists():
        print(f"bundle_manifest: no bundle at {bundle}", file=sys.stderr)
        return 1
    for stale in (LOCK, SBOM, "SHA256SUMS"):
        (bundle / stale).unlink(missing_ok=True)
    commit = git_commit()
    write_lock(bundle, commit)
    bom, figures = build_sbom(bundle, commit)
    text = JsonV1Dot6(bom).output_as_string(indent=1)
    error = JsonStrictValidator(SchemaVersion.V1_6).validate_str(text)
    if error is not None:
        print(f"bundle_manifest: the SBOM does not validate: {error}", file=sys.stderr)
        return 1
    (bundle / SBOM).write_text(text, encoding="utf-8")
    digest = write_manifest(bundle)
    count = len((bundle / "SHA256SUMS").read_text(encoding="utf-8").splitlines())
    print(f"bundle: {SBOM}: CPython and {figures['distributions']} Python distributions"
          f" ({figures['libraries']} of their shared libraries),"
          f" {figures['system_libraries']} system shared libraries,"
          f" {figures['models']} model weights file(s); {LOCK} (also installer/{LOCK})")
    print(f"bundle: SHA256SUMS lists {count} files; its SHA-256 (the bundle's digest): {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
