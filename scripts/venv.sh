# Shared by run_tests.sh and run_pipeline.sh: create or update .venv from requirements.txt.
# shellcheck shell=bash

say() { printf '%s\n' "$*"; }

# `$OWN_GROUP COMMAND... &` runs COMMAND as a process group of its own whose id is `$!`, so that a script signalled
# alone (`kill PID`, a supervisor) can stop COMMAND and everything it started at once: setsid (util-linux), not a
# group leader in a background job, makes its own pid the new group's. Without setsid, COMMAND runs as it is.
OWN_GROUP=setsid
command -v setsid >/dev/null || OWN_GROUP=command

stop_group() {  # PID: stop the process group `$OWN_GROUP ... &` started (or, without setsid, the process) and wait
    kill -TERM -- "-$1" 2>/dev/null || kill -TERM "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

ensure_venv() {
    local python="${PYTHON:-python3}" stamp=".venv/.requirements.sha256" want
    command -v "$python" >/dev/null 2>&1 || { say "error: $python not found; install Python 3.10 or newer" >&2; exit 1; }
    "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
        || { say "error: Python 3.10 or newer is needed ($python is $("$python" -V 2>&1))" >&2; exit 1; }
    if [[ ! -x .venv/bin/python ]]; then
        say "Creating the virtual environment .venv"
        "$python" -m venv .venv
    fi
    want="$(sha256sum requirements.txt | cut -d' ' -f1) bytecode"  # " bytecode": venvs from before compile_bytecode
    if [[ "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
        say "Installing the Python dependencies from requirements.txt into .venv (a few minutes the first time)"
        if ! { install_requirements && compile_bytecode; } > .venv/pip-install.log 2>&1; then
            say "error: installing the Python dependencies failed; last lines of .venv/pip-install.log:" >&2
            tail -n 20 .venv/pip-install.log >&2
            low_disk_hint .venv "${UV_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}}" "${TMPDIR:-/tmp}" >&2
            exit 1
        fi
        echo "$want" > "$stamp"
    fi
}

# uv (a PyPI package, installed into .venv first) installs requirements.txt in about 40 s here where pip takes
# about 90 s; if uv cannot be had or fails, pip does the whole install, unless uv ran out of disk space: pip would
# need as much, and its own failure would then hide uv's clear one under a broken download's error.
install_requirements() {
    local uv_status=1
    rm -f .venv/uv-install.log
    if .venv/bin/python -m pip install --disable-pip-version-check -q uv; then
        # uv's temporary files (an empty uv-setuptools-<hash>.lock per install of this package) in a folder of its
        # own, removed after, not left in /tmp
        local scratch
        scratch="$(mktemp -d "$PWD/.venv/uv-tmp.XXXXXX")"
        if TMPDIR="$scratch" .venv/bin/uv pip install --python .venv/bin/python -r requirements.txt \
            > .venv/uv-install.log 2>&1; then
            uv_status=0
        fi
        rm -rf "$scratch"
        cat .venv/uv-install.log
    fi
    if (( uv_status == 0 )); then
        prune_uv_cache
        return 0
    fi
    if grep -q "No space left on device" .venv/uv-install.log 2>/dev/null; then
        echo "uv ran out of disk space (above); pip is not tried, as it would need as much"
        return 1
    fi
    echo "uv could not install the requirements (above); installing them with pip"
    .venv/bin/python -m pip install --disable-pip-version-check --upgrade pip \
        && .venv/bin/python -m pip install --disable-pip-version-check -r requirements.txt
}

# uv keeps every source archive it builds, under a new revision each time the index sends no caching headers (the
# PyPI mirror on this project's test machine sends none): each install left pyspark's 450 MB archive and its
# 1.4 GB build behind, and about 30 installs left 64 GB there and filled its disk. Pruning drops the revisions
# nothing refers to; the install has already succeeded, so a prune that fails only says so.
prune_uv_cache() {
    .venv/bin/uv cache prune || echo "uv cache prune failed (above); the installed packages are not affected"
}

# A full disk shows up in pip's log as a broken download ("Connection interrupted", "an issue with network
# connectivity, not pip": the last CI run on this project's test machine) and in uv's as an I/O error; so a failed
# install names each disk it uses (the venv's, the caches', the temp directory's) that has less than the ~3 GB it
# needs: pyspark is a 450 MB source archive, unpacked and built into a wheel.
low_disk_hint() {
    local path free_mb mount seen=" " need_mb="${PINPIPE_INSTALL_NEEDS_MB:-3000}"
    for path in "$@"; do
        while [[ ! -e "$path" && "$path" != / ]]; do path="$(dirname "$path")"; done
        read -r free_mb mount < <(df -Pm "$path" 2>/dev/null | awk 'NR == 2 { print $4, $6 }') || continue
        [[ "$seen" == *" $mount "* ]] && continue
        seen+="$mount "
        if (( free_mb < need_mb )); then
            say "the disk holding $path has $free_mb MB free; installing needs about $need_mb MB (pyspark alone is" \
                "a 450 MB source archive, unpacked and built): a full disk looks like a broken download or an I/O" \
                "error above"
        fi
    done
}

# Python compiles every module it imports that has no .pyc file beside it, and writes none where it may not
# (PYTHONDONTWRITEBYTECODE=1, as on this project's test machine; a read-only tree). uv installs no .pyc files, so
# they are all compiled once here (about 10 s on 2 cores), or every Spark session, notebook and test would pay
# for compiling pandas, pyspark and matplotlib again (README, "Benchmarks").
# A file that does not compile (a package's Python 2 test data) is skipped.
compile_bytecode() {
    local site
    site="$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
    .venv/bin/python -m compileall -q -j 0 "$site" > .venv/compileall.log 2>&1 || true
}
