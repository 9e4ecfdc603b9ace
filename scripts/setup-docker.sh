#!/usr/bin/env bash
# setup-docker.sh - make a local Docker engine and the pytest-passk base image available.
#
# Idempotent and cheap to re-run: when the engine answers and the image exists it does
# nothing but two quick checks. Otherwise it
#   1. installs docker.io and debootstrap with apt-get when they are missing,
#   2. starts dockerd in the background (no service manager needed), logging to
#      /var/log/dockerd.log, and waits until `docker info` answers,
#   3. builds the base image from Debian packages (no registry needed):
#        debootstrap --variant=minbase --include=python3 bookworm ROOTFS
#        tar -C ROOTFS -c . | docker import - IMAGE
#      The trimmed rootfs tarball is cached, so re-imports take seconds.
#
# Environment:
#   PASSK_BASE_IMAGE      image name            (default pytest-passk/python:bookworm)
#   PASSK_CACHE_DIR       rootfs tarball cache  (default /var/cache/pytest-passk)
#   PASSK_DEBIAN_MIRROR   Debian mirror URL     (same as --mirror URL; default: the mirror the machine's
#                                                apt sources use for bookworm; none found: a clear error)
#   PASSK_DOCKERD_LOG     dockerd log file      (default /var/log/dockerd.log)
#   PASSK_DOCKERD_FLAGS   extra dockerd flags   (appended to the auto-detected ones)
#   PASSK_REBUILD=1       rebuild the rootfs tarball and re-import the image
#   PASSK_APT_DIR         where the apt sources are read (default /etc/apt)
#
# Options:
#   --mirror URL          Debian mirror to debootstrap from (overrides PASSK_DEBIAN_MIRROR)
#   --print-mirror        print the Debian mirror that would be used (or the error) and exit
#   -h, --help            show this header
#
# Progress goes to stderr; on failure it exits non-zero with one line "setup-docker: error: ...".
set -euo pipefail

while [ "$#" -gt 0 ]; do
    case "$1" in
        --mirror) [ "$#" -ge 2 ] || { echo "setup-docker: error: --mirror needs a URL" >&2; exit 2; }
                  PASSK_DEBIAN_MIRROR="$2"; shift 2 ;;
        --mirror=*) PASSK_DEBIAN_MIRROR="${1#--mirror=}"; shift ;;
        --print-mirror) PRINT_MIRROR=1; shift ;;
        -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "setup-docker: error: unknown argument '$1' (known: --mirror URL, --print-mirror, --help)" >&2; exit 2 ;;
    esac
done

IMAGE="${PASSK_BASE_IMAGE:-pytest-passk/python:bookworm}"
CACHE_DIR="${PASSK_CACHE_DIR:-/var/cache/pytest-passk}"
DOCKERD_LOG="${PASSK_DOCKERD_LOG:-/var/log/dockerd.log}"
SUITE=bookworm
TARBALL="$CACHE_DIR/rootfs-$SUITE-minbase-python3.tar"
DOCKER_WAIT_SECONDS=60
APT_DIR="${PASSK_APT_DIR:-/etc/apt}"

log() { printf 'setup-docker: %s\n' "$*" >&2; }
die() { printf 'setup-docker: error: %s\n' "$*" >&2; exit 1; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "$1 needs root; re-run as root (e.g. sudo $0)"
}

docker_answers() { timeout 10 docker info >/dev/null 2>&1; }

# --- 1. packages -----------------------------------------------------------------------------
install_packages() {
    local missing=()
    command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
    command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
    # docker.io ships docker-init (tini) for `docker run --init`; keep it if someone removed tini.
    if command -v dockerd >/dev/null 2>&1 && ! command -v docker-init >/dev/null 2>&1; then
        missing+=(tini)
    fi
    [ "${#missing[@]}" -eq 0 ] && return 0
    need_root "installing ${missing[*]}"
    command -v apt-get >/dev/null 2>&1 || die "apt-get not found; install ${missing[*]} by hand"
    log "installing ${missing[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || die "apt-get update failed"
    apt-get install -y -q --no-install-recommends "${missing[@]}" >&2 \
        || die "apt-get install ${missing[*]} failed"
    command -v dockerd >/dev/null 2>&1 || die "dockerd still missing after installing docker.io"
}

# --- 2. engine -------------------------------------------------------------------------------
# Only a local unix-socket engine can be started by this script.
local_engine() {
    case "${DOCKER_HOST:-}" in
        "" | unix:///var/run/docker.sock | unix:///run/docker.sock) return 0 ;;
        *) return 1 ;;
    esac
}

# Storage driver: keep whatever an existing /var/lib/docker was made with (switching would
# hide its images); otherwise overlay2 when the kernel has overlayfs and the backing
# filesystem is not itself overlayfs (overlay-on-overlay fails); otherwise vfs (slow, works).
pick_storage_driver() {
    local root=/var/lib/docker
    if [ -d "$root/overlay2" ] && [ -n "$(ls -A "$root/overlay2" 2>/dev/null)" ]; then
        echo overlay2; return
    fi
    if [ -d "$root/vfs/dir" ] && [ -n "$(ls -A "$root/vfs/dir" 2>/dev/null)" ]; then
        echo vfs; return
    fi
    mkdir -p "$root"
    local fstype
    fstype="$(stat -f -c %T "$root" 2>/dev/null || echo unknown)"
    if grep -qw overlay /proc/filesystems && [ "$fstype" != overlayfs ]; then
        echo overlay2
    else
        echo vfs
    fi
}

# Without working iptables (no netfilter, no CAP_NET_ADMIN) dockerd refuses to start unless
# told not to touch iptables. Sandbox containers use --network none, so nothing is lost.
iptables_flags() {
    if command -v iptables >/dev/null 2>&1 && timeout 10 iptables -t nat -L -n >/dev/null 2>&1; then
        return 0
    fi
    echo "--iptables=false --ip-masq=false"
}

ensure_cgroups() {
    # cgroup v1 hierarchies or the v2 unified hierarchy must be mounted for resource limits.
    if [ -z "$(ls -A /sys/fs/cgroup 2>/dev/null)" ]; then
        log "mounting cgroups"
        if grep -qw cgroup2 /proc/filesystems; then
            mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null || true
        fi
        if [ -z "$(ls -A /sys/fs/cgroup 2>/dev/null)" ] && command -v cgroupfs-mount >/dev/null 2>&1; then
            cgroupfs-mount || true
        fi
    fi
}

start_dockerd() {
    local flags="$1" stale
    # A dockerd killed with -9 leaves its pid file behind, and a new one refuses to start over it.
    if [ -f /var/run/docker.pid ]; then
        stale="$(cat /var/run/docker.pid 2>/dev/null || true)"
        # Gone, another program, or a zombie (where PID 1 does not reap, kill -0 still succeeds).
        if [ -z "$stale" ] || ! kill -0 "$stale" 2>/dev/null \
                || [ "$(cat "/proc/$stale/comm" 2>/dev/null)" != dockerd ] \
                || [ "$(awk '{print $3}' "/proc/$stale/stat" 2>/dev/null)" = Z ]; then
            log "removing the stale pid file of a dockerd that is gone (pid ${stale:-?})"
            rm -f /var/run/docker.pid
        fi
    fi
    # ... and leaves the containerd it managed running, which makes the new one time out.
    local orphan i
    orphan="$(pgrep -f 'containerd --config /var/run/docker/containerd/containerd.toml' 2>/dev/null || true)"
    if [ -n "$orphan" ] && [ -z "$(live_dockerd_pids)" ]; then
        log "stopping the containerd a dead dockerd left running (pid $orphan)"
        # shellcheck disable=SC2086
        kill $orphan 2>/dev/null || true
        for ((i = 0; i < 20; i++)); do
            orphan="$(pgrep -f 'containerd --config /var/run/docker/containerd/containerd.toml' 2>/dev/null || true)"
            [ -z "$orphan" ] && break
            [ "$(awk '{print $3}' "/proc/${orphan%% *}/stat" 2>/dev/null)" = Z ] && break
            sleep 0.5
        done
        # shellcheck disable=SC2086
        [ -z "$orphan" ] || kill -9 $orphan 2>/dev/null || true
    fi
    # Its containerd pid file too: a new dockerd waits on a pid that is gone or a zombie.
    local cpid
    cpid="$(cat /var/run/docker/containerd/containerd.pid 2>/dev/null || true)"
    if [ -n "$cpid" ] && { ! kill -0 "$cpid" 2>/dev/null || [ "$(awk '{print $3}' "/proc/$cpid/stat" 2>/dev/null)" = Z ]; }; then
        rm -f /var/run/docker/containerd/containerd.pid
    fi
    log "starting dockerd $flags (log: $DOCKERD_LOG)"
    mkdir -p "$(dirname "$DOCKERD_LOG")"
    printf '\n=== setup-docker: %s dockerd %s\n' "$(date -u +%FT%TZ)" "$flags" >>"$DOCKERD_LOG"
    # setsid+nohup: the daemon outlives this script and its terminal. 9>&-: it must not
    # inherit (and so hold forever) the setup lock.
    # shellcheck disable=SC2086
    setsid nohup dockerd $flags >>"$DOCKERD_LOG" 2>&1 </dev/null 9>&- &
    local pid=$! i
    for ((i = 0; i < DOCKER_WAIT_SECONDS * 2; i++)); do
        if docker_answers; then
            log "dockerd is up (pid $pid)"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || { log "dockerd exited: $(tail -n 1 "$DOCKERD_LOG")"; return 1; }
        sleep 0.5
    done
    log "dockerd did not answer within ${DOCKER_WAIT_SECONDS}s; stopping it (pid $pid)"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    return 1
}

live_dockerd_pids() {
    local p
    for p in $(pgrep -x dockerd 2>/dev/null); do
        # field 3 of /proc/PID/stat is the state; Z = zombie, X = dead
        case "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" in
            "" | Z | X) ;;
            *) printf '%s ' "$p" ;;
        esac
    done
}

ensure_engine() {
    docker_answers && return 0
    command -v docker >/dev/null 2>&1 || die "docker client not found (install docker.io)"
    local_engine || die "DOCKER_HOST=$DOCKER_HOST does not answer, and only a local engine can be started here"
    need_root "starting dockerd"
    command -v dockerd >/dev/null 2>&1 || die "dockerd not found (install docker.io)"

    # A daemon may already be starting (another run of this script, a service): give it a moment.
    # (A dockerd killed with -9 lingers as a zombie for a while: those do not count.)
    if [ -n "$(live_dockerd_pids)" ]; then
        log "dockerd is running but not answering yet; waiting"
        local i
        for ((i = 0; i < DOCKER_WAIT_SECONDS; i++)); do
            docker_answers && return 0
            [ -n "$(live_dockerd_pids)" ] || break
            sleep 1
        done
        [ -z "$(live_dockerd_pids)" ] \
            || die "dockerd (pid $(live_dockerd_pids)) is running but 'docker info' does not answer; see $DOCKERD_LOG"
        log "that dockerd has exited"
    fi

    ensure_cgroups
    local driver flags
    driver="$(pick_storage_driver)"
    # No systemd here: cgroupfs is the only cgroup driver that works.
    flags="--storage-driver=$driver --exec-opt native.cgroupdriver=cgroupfs $(iptables_flags) ${PASSK_DOCKERD_FLAGS:-}"
    start_dockerd "$flags" && return 0

    # Fallback for restricted hosts: no overlayfs, no iptables, no bridge.
    if [ "$driver" = overlay2 ] && [ -z "$(ls -A /var/lib/docker/overlay2 2>/dev/null)" ]; then
        driver=vfs
    fi
    flags="--storage-driver=$driver --exec-opt native.cgroupdriver=cgroupfs --iptables=false --ip-masq=false --bridge=none ${PASSK_DOCKERD_FLAGS:-}"
    log "retrying with minimal networking"
    start_dockerd "$flags" && return 0
    die "could not start dockerd; see $DOCKERD_LOG"
}

# --- 3. base image ---------------------------------------------------------------------------
# The Debian mirror to debootstrap from: --mirror / PASSK_DEBIAN_MIRROR, else the one the machine's
# apt sources use for $SUITE (on many networks only that one is reachable). Prints nothing when
# there is none: no public host is guessed.
debian_mirror() {
    if [ -n "${PASSK_DEBIAN_MIRROR:-}" ]; then echo "$PASSK_DEBIAN_MIRROR"; return; fi
    local f uri
    # deb822 *.sources: the first URIs of a stanza whose Suites include the bare suite.
    for f in "$APT_DIR"/sources.list.d/*.sources; do
        [ -r "$f" ] || continue
        uri="$(awk -v suite="$SUITE" '
            BEGIN { RS = ""; FS = "\n" }
            {
                u = ""; s = 0; t = 0
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^#/) continue
                    if ($i ~ /^URIs:/)   { sub(/^URIs:[ \t]*/, "", $i); split($i, a, /[ \t]+/); u = a[1] }
                    if ($i ~ /^Suites:/) { n = split($i, b, /[ \t]+/); for (j = 2; j <= n; j++) if (b[j] == suite) s = 1 }
                    if ($i ~ /^Types:/ && $i ~ /(^|[ \t])deb([ \t]|$)/) t = 1
                    if ($i ~ /^Enabled:[ \t]*no/) t = 0
                }
                if (u != "" && s && t) { print u; exit }
            }' "$f")"
        [ -n "$uri" ] && { echo "${uri%/}"; return; }
    done
    # one-line format: deb [opts] URI SUITE COMPONENTS...
    for f in "$APT_DIR"/sources.list "$APT_DIR"/sources.list.d/*.list; do
        [ -r "$f" ] || continue
        uri="$(awk -v suite="$SUITE" '
            $1 == "deb" {
                i = 2
                if ($i ~ /^\[/) { while (i <= NF && $i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) { print $i; exit }
            }' "$f")"
        [ -n "$uri" ] && { echo "${uri%/}"; return; }
    done
}

require_mirror() {
    local mirror
    mirror="$(debian_mirror)"
    [ -n "$mirror" ] || die "no Debian mirror for $SUITE: none in $APT_DIR/sources.list or $APT_DIR/sources.list.d/; pass --mirror URL (or set PASSK_DEBIAN_MIRROR), e.g. --mirror http://deb.debian.org/debian"
    echo "$mirror"
}

build_tarball() {
    need_root "debootstrap"
    command -v debootstrap >/dev/null 2>&1 || die "debootstrap not found (apt-get install debootstrap)"
    local mirror work rootfs
    mirror="$(require_mirror)"
    mkdir -p "$CACHE_DIR"
    work="$(mktemp -d "$CACHE_DIR/build.XXXXXX")"
    # shellcheck disable=SC2064
    trap "rm -rf '$work'" EXIT
    rootfs="$work/rootfs"
    log "debootstrap --variant=minbase --include=python3 $SUITE from $mirror (about a minute)"
    if ! debootstrap --variant=minbase --include=python3 "$SUITE" "$rootfs" "$mirror" \
        >"$work/debootstrap.log" 2>&1; then
        cp "$work/debootstrap.log" "$CACHE_DIR/debootstrap-failed.log" 2>/dev/null || true
        die "debootstrap failed: $(grep -E '^E:' "$work/debootstrap.log" | tail -n 1 || tail -n 1 "$work/debootstrap.log") (full log: $CACHE_DIR/debootstrap-failed.log)"
    fi
    local pyver
    pyver="$(chroot "$rootfs" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"
    [ "$pyver" = 3.11 ] || die "python3 in the $SUITE rootfs is '${pyver:-missing}', expected 3.11"

    # Trim: package caches and lists, docs, man pages, translations (~140 MB of ~260 MB).
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin \
        "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
        "$rootfs"/usr/share/info/* "$rootfs"/usr/share/locale/* "$rootfs"/var/log/* \
        "$rootfs"/var/cache/debconf/*-old "$rootfs"/tmp/* "$rootfs"/var/tmp/*
    # Containers run with --network none; an empty resolv.conf/hosts is filled in by docker.
    log "packing rootfs into $TARBALL"
    tar --numeric-owner -C "$rootfs" -cf "$work/rootfs.tar" .
    mv -f "$work/rootfs.tar" "$TARBALL"
    rm -rf "$work"
    trap - EXIT
}

import_image() {
    log "importing $TARBALL as $IMAGE"
    docker import \
        -c 'ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        -c 'CMD ["python3"]' \
        -m "pytest-passk base: debootstrap --variant=minbase --include=python3 $SUITE" \
        "$TARBALL" "$IMAGE" >/dev/null || die "docker import of $TARBALL as $IMAGE failed"
    local v
    v="$(docker run --rm --network none "$IMAGE" python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>&1)" \
        || die "image $IMAGE does not run python3: $v"
    [ "$v" = 3.11 ] || die "image $IMAGE has python $v, expected 3.11"
    log "image $IMAGE ready (python $v)"
}

ensure_image() {
    if [ "${PASSK_REBUILD:-0}" != 1 ] && docker image inspect "$IMAGE" >/dev/null 2>&1; then
        return 0
    fi
    if [ "${PASSK_REBUILD:-0}" = 1 ] || [ ! -s "$TARBALL" ]; then
        build_tarball
    fi
    import_image
}

main() {
    if [ "${PRINT_MIRROR:-0}" = 1 ]; then
        require_mirror
        return 0
    fi
    # Fast path: nothing to do (no lock, no root needed).
    if [ "${PASSK_REBUILD:-0}" != 1 ] && command -v docker >/dev/null 2>&1 && docker_answers \
        && docker image inspect "$IMAGE" >/dev/null 2>&1; then
        log "ok: engine answers, image $IMAGE present"
        return 0
    fi
    # One setup at a time (parallel test sessions may all call this script).
    if [ "$(id -u)" -eq 0 ]; then
        mkdir -p "$CACHE_DIR"
        exec 9>"$CACHE_DIR/.setup.lock"
        flock -w 600 9 || die "another setup-docker.sh holds $CACHE_DIR/.setup.lock"
    elif [ -S /var/run/docker.sock ] && [ ! -w /var/run/docker.sock ] && [ -z "${DOCKER_HOST:-}" ]; then
        die "no permission on /var/run/docker.sock; run as root or add $(id -un) to the docker group"
    fi
    install_packages
    ensure_engine
    ensure_image
    log "ok: engine answers, image $IMAGE present"
}

main "$@"
