"""`make images`: one OCI image per service of deploy/services.toml, built with podman.

Why this shape: no registry can be reached, so the base is made here from Debian's packages (mmdebstrap) and
cached in the state folder under a hash of its package list; the service's runtime wheels are built outside
the image (pinned by constraints.txt) and only installed inside it, so no compiler, test or cache lands in an
image. Run: ``python deploy/images/build.py [service ...]`` (every service when none is named).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "deploy"))
from servicetable import Service, services  # noqa: E402

HERE = ROOT / "deploy" / "images"
PODMAN = [str(HERE / "podman.sh")]
SUITE = "bookworm"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
SOURCE = os.environ.get("IMAGE_SOURCE", "https://git.unified-seller.example/unified-seller")
UID = 10001
PRIVATE_SHM = 'mount -t tmpfs -o size=64m tmpfs /dev/shm && exec "$0" "$@"'
# Documentation, manual pages and translations are never read in a container.
DPKG_EXCLUDES = ["/usr/share/doc/*", "/usr/share/man/*", "/usr/share/locale/*", "/usr/share/info/*"]


def image_specs(names: list[str] | None = None) -> list[Service]:
    return services(names)


def say(text: str) -> None:
    print(f"[images] {text}", flush=True)


def podman(*args: str, capture: bool = False) -> str:
    done = subprocess.run([*PODMAN, *args], check=True, text=True, capture_output=capture)
    return done.stdout if capture else ""


def image_exists(ref: str) -> bool:
    return subprocess.run([*PODMAN, "image", "exists", ref], check=False).returncode == 0


def state_dir() -> Path:
    return Path(os.environ.get("US_STATE_DIR", "/var/tmp/unified-seller")) / "images"


def base_image() -> str:
    """The project's Debian base: rebuilt only when its package list (or suite, or excludes) changes."""
    packages = [
        line.strip()
        for line in (HERE / "base-packages.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    key = hashlib.sha256("\n".join([SUITE, *packages, *DPKG_EXCLUDES]).encode()).hexdigest()[:12]
    ref = f"localhost/unified-seller/base:{SUITE}-{key}"
    if image_exists(ref):
        say(f"base {ref} (cached)")
        return ref
    tar = state_dir() / f"base-{SUITE}-{key}.tar"
    if not tar.exists():
        say(f"making the base from Debian's packages: {', '.join(packages)}")
        tar.parent.mkdir(parents=True, exist_ok=True)
        partial = tar.with_name(tar.stem + ".partial.tar")  # mmdebstrap picks the format by suffix
        # In a mount namespace of its own with a private /dev/shm: mmdebstrap's clean-up of its chroot removed
        # the host's /dev/shm files on these machines (every running PostgreSQL lost its shared memory).
        isolated = ["unshare", "--mount", "--propagation", "private", "sh", "-c", PRIVATE_SHM, "mmdebstrap"]
        subprocess.run(
            [
                *isolated,
                "--quiet",
                "--variant=apt",
                f"--include={','.join(packages)}",
                *[f"--dpkgopt=path-exclude={p}" for p in DPKG_EXCLUDES],
                "--dpkgopt=path-include=/usr/share/doc/*/copyright",
                "--customize-hook=rm -rf $1/var/lib/apt/lists/* $1/var/cache/apt/*",
                SUITE,
                str(partial),
                MIRROR,
            ],
            check=True,
        )
        partial.rename(tar)
    path_env = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    podman("import", "--quiet", "--change", f"ENV {path_env}", str(tar), ref)
    say(f"base {ref} imported from {tar}")
    return ref


def build_wheels(specs: list[Service], into: Path) -> None:
    """Every runtime wheel, pinned by constraints.txt; compiled outside (none of the images gets a compiler)."""
    shutil.rmtree(into, ignore_errors=True)
    into.mkdir(parents=True)
    packages = [str(ROOT / "shared"), *dict.fromkeys(str(s.package) for s in specs)]
    pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(into)]
    # A fixed timestamp makes the project's own wheels byte-identical when their sources are, so an unchanged
    # service keeps its cached image layer (the digest below is part of each image's build arguments).
    env = {**os.environ, "SOURCE_DATE_EPOCH": "315532800"}
    subprocess.run([*pip, "--constraint", str(ROOT / "constraints.txt"), *packages], check=True, env=env)


def digest(folder: Path, *, project: bool) -> str:
    """Of the third-party wheels (project=False) or of the project's own (unified_*)."""
    h = hashlib.sha256()
    for path in sorted(p for p in folder.iterdir() if p.name.startswith("unified_") == project):
        h.update(path.name.encode() + b"\0" + hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()[:16]


def containerfile(spec: Service, base: str) -> str:
    """Containerfile of one service: a venv with its wheels, a non-root user, entrypoint ``serve``.

    Two layers: the third-party dependencies (rebuilt only when a pinned wheel changes, DEPS_DIGEST) and the
    project's own wheels on top (PROJECT_DIGEST), so a commit rebuilds only the small second one. pip runs from
    Debian's bundled wheel and is never installed into the image."""
    # A path inside the wheel (pip runs from it): the shell's glob cannot match it, so the wheel is found first.
    pip = '/opt/venv/bin/python "$(echo /usr/share/python-wheels/pip-*.whl)/pip" install -q --no-index --no-cache-dir'
    return f"""FROM {base}
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HTTP_HOST=0.0.0.0
ARG DEPS_DIGEST
RUN --mount=type=bind,source=wheels,target=/wheels \\
    python3 -m venv --without-pip /opt/venv \\
 && {pip} --find-links /wheels "{spec.distribution}=={spec.version}" \\
 && useradd --uid {UID} --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin app
ARG PROJECT_DIGEST
RUN --mount=type=bind,source=wheels,target=/wheels \\
    {pip} --no-deps --force-reinstall /wheels/unified_shared-*.whl /wheels/{wheel_name(spec)}-*.whl
USER {UID}:{UID}
WORKDIR /tmp
ENTRYPOINT ["python", "-m", "{spec.module}", "serve"]
"""


def deps_key(spec: Service, wheels_digest: str) -> str:
    """The dependency layer's cache key: the third-party wheels and what the service and shared declare (a
    dependency added to a service whose wheel another service already had still rebuilds the layer)."""
    declared = [(ROOT / "shared" / "pyproject.toml").read_bytes(), (spec.package / "pyproject.toml").read_bytes()]
    return hashlib.sha256(wheels_digest.encode() + b"".join(declared)).hexdigest()[:16]


def wheel_name(spec: Service) -> str:
    return spec.distribution.replace("-", "_")


def git_revision() -> str:
    done = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=False, capture_output=True, text=True)
    revision = done.stdout.strip() or "unknown"
    dirty = subprocess.run(["git", "-C", str(ROOT), "diff", "--quiet", "HEAD"], check=False).returncode != 0
    return revision + ("-dirty" if dirty else "")


def build(spec: Service, base: str, context: Path, revision: str, digests: tuple[str, str]) -> None:
    path = context / f"Containerfile.{spec.name}"
    path.write_text(containerfile(spec, base))
    commit = revision.removesuffix("-dirty")
    labels = {
        "org.opencontainers.image.title": spec.distribution,
        "org.opencontainers.image.source": f"{SOURCE}/tree/{commit}/{spec.package.relative_to(ROOT)}",
        "org.opencontainers.image.version": spec.version,
        "org.opencontainers.image.revision": revision,
        "org.opencontainers.image.base.name": base,
    }
    podman(
        "build",
        "--quiet",
        "--network",
        "host",
        "--pull=never",
        "--file",
        str(path),
        "--tag",
        spec.image(),
        "--build-arg",
        f"DEPS_DIGEST={deps_key(spec, digests[0])}",
        "--build-arg",
        f"PROJECT_DIGEST={digests[1]}",
        *[arg for k, v in labels.items() for arg in ("--label", f"{k}={v}")],
        str(context),
    )


TEST_INFRA = {
    # name -> (Debian packages, entry script, user): what testcontainers starts instead of public images.
    "kafka": ("openjdk-17-jre-headless", "kafka-entry.sh", str(UID)),
    "postgres": ("postgresql-15", "postgres-entry.sh", "postgres"),
}


def kafka_version() -> str:
    for line in (ROOT / "deploy" / "infra.sh").read_text().splitlines():
        if line.startswith("KAFKA_VERSION="):
            return line.split("=", 1)[1].strip('"')
    raise RuntimeError("KAFKA_VERSION not found in deploy/infra.sh")


def test_infra_tags() -> dict[str, str]:
    return {
        "kafka": f"localhost/unified-seller/test-kafka:{kafka_version()}",
        "postgres": "localhost/unified-seller/test-postgres:15",
    }


def build_test_infra(base: str) -> list[str]:
    """Kafka from the Maven jars deploy/infra.sh fetched, PostgreSQL from Debian's package, on the same base."""
    context = state_dir() / "test-infra"
    shutil.rmtree(context, ignore_errors=True)
    shutil.copytree(HERE / "test-infra", context)
    jars = Path(os.environ.get("US_STATE_DIR", "/var/tmp/unified-seller")) / "kafka" / f"lib-{kafka_version()}"
    if not (jars / ".complete").exists():
        subprocess.run([str(ROOT / "deploy" / "infra.sh"), "install"], check=True)
    shutil.copytree(jars, context / "kafka-lib", ignore=shutil.ignore_patterns(".complete"))
    tags = test_infra_tags()
    for name, (packages, entry, user) in TEST_INFRA.items():
        jars_line = "COPY kafka-lib /opt/kafka/lib\n" if name == "kafka" else ""
        (context / f"Containerfile.{name}").write_text(
            f"FROM {base}\n"
            # openjdk's postinst links its manual pages: the base leaves /usr/share/man out.
            "RUN mkdir -p /usr/share/man/man1 && apt-get update -qq \\\n"
            f" && apt-get install -y -qq --no-install-recommends {packages} >/dev/null \\\n"
            " && rm -rf /var/lib/apt/lists/* /var/cache/apt/*\n"
            f"{jars_line}COPY {entry} /usr/local/bin/entry\n"
            f"USER {user}\n"
            'ENTRYPOINT ["/usr/local/bin/entry"]\n'
        )
        say(f"building {tags[name]}")
        podman(
            "build",
            "--quiet",
            "--network",
            "host",
            "--pull=never",
            "--file",
            str(context / f"Containerfile.{name}"),
            "--tag",
            tags[name],
            str(context),
        )
    return list(tags.values())


def main() -> None:
    parser = argparse.ArgumentParser(description="Build one OCI image per service with podman")
    parser.add_argument("services", nargs="*", help="services of deploy/services.toml (default: every one)")
    parser.add_argument("--test-infra", action="store_true", help="the Kafka and PostgreSQL images for testcontainers")
    args = parser.parse_args()
    if args.test_infra:
        tags = build_test_infra(base_image())
        env = state_dir() / "test-infra.env"
        env.write_text(f"TESTCONTAINERS_KAFKA_IMAGE={tags[0]}\nTESTCONTAINERS_POSTGRES_IMAGE={tags[1]}\n")
        for tag in tags:
            size = int(podman("image", "inspect", "--format", "{{.Size}}", tag, capture=True).strip())
            say(f"{tag:<52} {size / 1e6:7.1f} MB")
        return
    specs = image_specs(args.services or None)
    unknown = set(args.services) - {s.name for s in specs}
    if unknown:
        parser.error(f"not in deploy/services.toml: {', '.join(sorted(unknown))}")
    started = time.monotonic()
    base = base_image()
    context = state_dir() / "context"
    say("building the runtime wheels (constraints.txt)")
    build_wheels(specs, context / "wheels")
    wheels = context / "wheels"
    revision, digests = git_revision(), (digest(wheels, project=False), digest(wheels, project=True))
    for spec in specs:
        say(f"building {spec.image()}")
        build(spec, base, context, revision, digests)
    for spec in specs:
        size = int(podman("image", "inspect", "--format", "{{.Size}}", spec.image(), capture=True).strip())
        say(f"{spec.image():<52} {size / 1e6:7.1f} MB")
    say(f"{len(specs)} images in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
