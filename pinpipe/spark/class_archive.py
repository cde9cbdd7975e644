"""A class-data archive (AppCDS) for new local Spark drivers: the classes a driver loads to run this project's
batch work, parsed, verified and laid out once, then mapped by every later driver instead of being loaded from
Spark's ~250 jars one by one: a driver that maps it starts in about half the time (README, "Benchmarks").

Built once per Java build and Spark install (`python -m pinpipe.spark.class_archive`, which run_pipeline.sh and
run_tests.sh call; about a minute): a fresh driver started with -XX:ArchiveClassesAtExit runs the notebook's
steps on a tiny built-in batch, and the archive it writes when it exits is renamed into place only if that
worked. The file is named by a key of the Java build and the Spark jars, so another JDK or pyspark gets its
own, and the JVM itself refuses an archive whose jars changed. SPARK_CLASS_ARCHIVE=off: never use or build
one; SPARK_CLASS_ARCHIVE=PATH: that file instead of ~/.cache/pinpipe/spark-classes/<key>.jsa.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

OFF = "off"
KEEP_OTHERS = 3  # archives of other Java or Spark installs that still exist kept in the cache directory (last used)
BUILD_TIMEOUT_S = 600
# A JVM that cannot map a broken archive crashes: no hs_err_pid*.log in the working directory, no core dump.
QUIET_CRASH = ("-XX:ErrorFile=/dev/null", "-XX:-CreateCoredumpOnCrash")


def java_executable() -> Path | None:
    """The `java` a new Spark driver runs: $JAVA_HOME/bin/java, else the one on PATH (as spark-class picks)."""
    home = os.environ.get("JAVA_HOME")
    found = os.path.join(home, "bin", "java") if home else shutil.which("java")
    return Path(os.path.realpath(found)) if found and os.path.isfile(found) else None


def spark_home() -> Path:
    """$SPARK_HOME, else the pyspark package's own directory (found without importing pyspark: ~0.3 s)."""
    if os.environ.get("SPARK_HOME"):
        return Path(os.environ["SPARK_HOME"])
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise OSError("pyspark is not installed")
    return Path(spec.origin).parent


def archive_key(java: Path, spark: Path) -> str:
    """A digest of the Java build (its binary and libjvm) and the Spark jars (where they are, their names, sizes
    and times): the inputs the JVM checks before it maps an archive."""
    digest = hashlib.sha256(f"{spark}\n".encode())  # the archive names the jars by their paths
    java_home = java.parent.parent
    for path in [java, *sorted(java_home.glob("lib/server/libjvm.*"))]:
        stat = path.stat()
        digest.update(f"{path}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    for jar in sorted((spark / "jars").glob("*.jar")):
        stat = jar.stat()
        digest.update(f"{jar.name}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "pinpipe" / "spark-classes"


def archive_path() -> Path | None:
    """Where this Java and Spark's archive is (or would be built); None when SPARK_CLASS_ARCHIVE=off or no
    java is found."""
    setting = os.environ.get("SPARK_CLASS_ARCHIVE", "").strip()
    if setting.lower() == OFF:
        return None
    if setting:
        return Path(setting)
    java = java_executable()
    return cache_dir() / f"{archive_key(java, spark_home())}.jsa" if java else None


def java_option() -> str:
    """The driver flag that maps the archive, when there is one; else nothing (a driver starts as before)."""
    try:
        path = archive_path()
    except OSError:  # a Java or Spark install that cannot be read: no archive
        return ""
    if path is None or not path.is_file():
        return ""
    _noted(path)  # a use: pruning keeps the archives used last
    return f"-XX:SharedArchiveFile={path}"


def ensure(log=print) -> Path | None:
    """The archive, built first if it is missing; None when archives are off or cannot be built here."""
    path = archive_path()
    if path is None:
        log("Spark class archive: off (SPARK_CLASS_ARCHIVE=off or no java on PATH)")
        return None
    if path.is_file():
        return _noted(path)
    with _build_lock(path, log):  # one build at a time; a process that waited uses the one just built
        if path.is_file():
            return _noted(path)
        failed = failure_note(path)
        if failed.is_file():
            log(f"Spark class archive: an earlier build failed ({failed}); Spark starts without one. "
                f"Retry with: python -m pinpipe.spark.class_archive --rebuild")
            return None
        return build(path, log)


@contextmanager
def _build_lock(path: Path, log):
    """An exclusive lock on <archive>.lock for the time of a build (released if the process dies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(f"Spark class archive: waiting for another process building {path}")
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def failure_note(path: Path) -> Path:
    return path.with_name(path.name + ".failed")


def owner_note(path: Path) -> Path:
    """Beside an archive: the Spark install it was built for (its jars are named by path inside it)."""
    return path.with_name(path.name + ".spark-home")


def _noted(path: Path) -> Path:
    """`path`, with its owner note written if it has none (an archive built before there were notes), else
    touched: the note's time is the archive's last use."""
    note = owner_note(path)
    try:
        if note.is_file():
            os.utime(note)
        else:
            note.write_text(f"{spark_home()}\n")
    except OSError:  # a read-only cache: the archive is still usable, only pruning knows less
        pass
    return path


def last_used(archive: Path) -> float:
    """When a driver last started with `archive` (its owner note's time), or when it was built."""
    times = []
    for path in (archive, owner_note(archive)):
        try:
            times.append(path.stat().st_mtime)
        except OSError:  # no note yet, or removed meanwhile
            pass
    return max(times, default=0.0)


def build(path: Path, log=print) -> Path | None:
    """Run the batch steps on a tiny batch in a fresh driver (`python -m pinpipe.spark.sample_batch`) that writes
    its loaded classes to a temporary file when it exits; rename that to `path` when the run succeeded. A failure
    is logged, not raised: Spark then starts as it would without an archive."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    log(f"Spark class archive: building {path} (once per Java and Spark install, about a minute)")
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pinpipe-class-archive-") as work:
        env = {**os.environ, "SPARK_CLASS_ARCHIVE": OFF,
               "SPARK_SUBMIT_OPTS": f"{os.environ.get('SPARK_SUBMIT_OPTS', '')} "
                                    f"-XX:ArchiveClassesAtExit={partial} -Xlog:cds=off -Xlog:cds+dynamic=off".strip()}
        try:
            result = subprocess.run([sys.executable, "-m", "pinpipe.spark.sample_batch", work], env=env,
                                    capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            result = None
        class_path = Path(work, "class-path").read_text() if Path(work, "class-path").is_file() else None
    if result is None:
        why = "timed out"
    elif result.returncode != 0:
        why = f"exit {result.returncode}: {result.stderr.strip()[-1500:]}"
    elif not (class_path and usable(partial, class_path)):
        why = "the archive it wrote does not map (a JVM refuses it)"
    else:
        why = None
    if why is not None:
        partial.unlink(missing_ok=True)
        failure_note(path).write_text(why + "\n")
        log(f"Spark class archive: not built ({why}); Spark starts without one")
        return None
    failure_note(path).unlink(missing_ok=True)
    os.replace(partial, path)
    _noted(path)
    log(f"Spark class archive: built in {time.monotonic() - started:.0f} s "
        f"({path.stat().st_size / 2**20:.0f} MiB)")
    _prune(path)
    return path


def usable(archive: Path, class_path: str) -> bool:
    """Whether a JVM maps `archive` for `class_path` (-Xshare:on fails instead of going on without it). A file cut
    short (a full disk during the dump) would crash every JVM given it, even without -Xshare:on."""
    java = java_executable()
    if java is None or not archive.is_file() or archive.stat().st_size == 0:
        return False
    check = subprocess.run([str(java), f"-XX:SharedArchiveFile={archive}", "-Xshare:on", *QUIET_CRASH, "-cp",
                            class_path, "-version"], capture_output=True, timeout=120)
    return check.returncode == 0


def _prune(current: Path) -> None:
    """Remove the archives beside `current` whose Spark install is gone (a clone deleted with its venv: each
    clone's venv has its own archive), then keep the KEEP_OTHERS used last of the rest (a clone run once does not
    push out the one run every day). An archive without an owner note (built before there were any) counts as
    one whose install still exists."""
    def gone(archive: Path) -> bool:
        try:
            return not Path(owner_note(archive).read_text().strip(), "jars").is_dir()
        except OSError:
            return False

    others = sorted((p for p in current.parent.glob("*.jsa") if p != current),
                    key=last_used, reverse=True)
    kept = [p for p in others if not gone(p)]
    for old in [p for p in others if p not in kept] + kept[KEEP_OTHERS:]:
        for stale in (old, old.with_name(old.name + ".lock"), failure_note(old), owner_note(old)):
            stale.unlink(missing_ok=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rebuild", action="store_true", help="build the archive even if it exists")
    parser.add_argument("--path", action="store_true", help="print where the archive is (or would be) and exit")
    args = parser.parse_args(argv)
    if args.path:
        print(archive_path() or OFF)
        return 0
    path = archive_path()
    if args.rebuild and path is not None:
        path.unlink(missing_ok=True)
        failure_note(path).unlink(missing_ok=True)
    try:
        ensure(log=lambda line: print(line, flush=True))
    except KeyboardInterrupt:  # not a failed build: nothing is noted, and the next start builds it
        print("Spark class archive: interrupted, not built; the next start builds it", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
