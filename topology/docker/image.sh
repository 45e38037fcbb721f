#!/usr/bin/env bash
# image.sh: Herald's Docker image, built and tested on a machine that reaches Debian's package
# mirror but no container registry (what `make image` and `make image-test` run).
#
# Why a script: the base image cannot be pulled, so it is made here, with debootstrap, from Debian's
# own packages, and cached; and a Docker daemon may not be running, so one is started privately for
# the duration and stopped again.
#
#   image.sh build   make (once) and import the base root, then `docker build` the image from
#                    topology/docker/Dockerfile with .build/release/herald (build it first:
#                    swift build -c release --static-swift-stdlib --product herald) and
#                    topology/default.json; tags herald:<version> and herald:latest, and saves it
#                    as .run/image/herald-<version>.tar (for `docker load` elsewhere)
#   image.sh test    the image against a private Redis and PostgreSQL (Tests/Support/services.sh,
#                    reached with --network host): migrate --demo in the image, the daemon in the
#                    image, a demo plan made due in a few seconds, then checks that it fired (the
#                    fire claimed and enqueued, the Celery message on schedule_executor) and that
#                    the container's health check passes. Prints PASS or FAIL; the exit code is
#                    the verdict
#
# The Docker daemon: $DOCKER_HOST, else /var/run/docker.sock when a daemon answers there, else a
# private dockerd (installed from Debian's docker.io when missing) with its data under
# .run/docker and no iptables or bridge (containers use --network host), stopped on exit.
#
# Cached under .run/image (git-ignored): base-<key>.tar, the debootstrap root as a tarball, where
# <key> hashes the suite and the package list; delete it to rebuild the base.
set -euo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd -- "$SCRIPT_DIR/../.." && pwd)
IMAGE_DIR="$REPO_ROOT/.run/image"
DOCKER_DIR="$REPO_ROOT/.run/docker"
HERALD="$REPO_ROOT/.build/release/herald"
SERVICES="$REPO_ROOT/Tests/Support/services.sh"

SUITE=bookworm
MIRROR=${HERALD_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# What the binary links (readelf -d .build/release/herald | grep NEEDED) and what it reads at run
# time: CA certificates for HTTPS (billing, marketplace, mail APIs), the zone database for cron.
RUNTIME_PACKAGES=(libhiredis0.14 libpq5 libevent-2.1-7 libcurl4 ca-certificates tzdata libstdc++6 libgcc-s1)
IMAGE_NAME=${HERALD_IMAGE_NAME:-herald}

export DEBIAN_FRONTEND=noninteractive
export DOCKER_BUILDKIT=0 # the classic builder: no buildx plugin needed, and it talks to older daemons

say() { echo "image: $*" >&2; }
die() { echo "image: error: $*" >&2; exit 1; }

# wait_until SECONDS COMMAND...: poll COMMAND every 100 ms until it succeeds; false on timeout.
wait_until() {
    local deadline=$((SECONDS + $1))
    shift
    until "$@"; do
        ((SECONDS < deadline)) || return 1
        sleep 0.1
    done
}

# need_packages PACKAGE...: apt-get install those that are missing.
need_packages() {
    local missing=() p
    for p in "$@"; do
        [[ $(dpkg-query -W -f='${Status}' "$p" 2>/dev/null) == *" ok installed" ]] || missing+=("$p")
    done
    ((${#missing[@]} > 0)) || return 0
    ((EUID == 0)) || die "need root to install ${missing[*]}"
    say "installing ${missing[*]}"
    if ! { apt-get -q update && apt-get -q install -y --no-install-recommends "${missing[@]}"; } \
        >"$IMAGE_DIR/apt.log" 2>&1; then
        tail -n 20 "$IMAGE_DIR/apt.log" >&2
        die "apt-get install ${missing[*]} failed"
    fi
}

# --- the Docker daemon ---------------------------------------------------------------------------

DOCKERD_PID=
DOCKERD_EXEC_ROOT=
daemon_answers() { docker version --format '{{.Server.Version}}' >/dev/null 2>&1; }

stop_private_dockerd() {
    [[ -n $DOCKERD_PID ]] || return 0
    say "stopping the private dockerd (pid $DOCKERD_PID)"
    kill -TERM "$DOCKERD_PID" 2>/dev/null || true
    wait_until 30 bash -c "! kill -0 $DOCKERD_PID 2>/dev/null" || kill -KILL "$DOCKERD_PID" 2>/dev/null || true
    DOCKERD_PID=
    # dockerd leaves its default network namespace mounted in its exec root.
    umount "$DOCKERD_EXEC_ROOT/netns/default" 2>/dev/null || true
    rm -rf -- "$DOCKERD_EXEC_ROOT"
}

docker_up() {
    command -v docker >/dev/null 2>&1 || need_packages docker.io
    if [[ -n ${DOCKER_HOST:-} ]]; then
        daemon_answers || die "no Docker daemon answers at DOCKER_HOST=$DOCKER_HOST"
        return
    fi
    if [[ -S /var/run/docker.sock ]] && daemon_answers; then return; fi
    command -v dockerd >/dev/null 2>&1 || need_packages docker.io
    ((EUID == 0)) || die "no Docker daemon runs, and starting one needs root"
    mkdir -p "$DOCKER_DIR"
    # containerd's socket paths must stay under 108 bytes: its state goes to a short /tmp path.
    DOCKERD_EXEC_ROOT="/tmp/herald-docker-$(printf '%s' "$DOCKER_DIR" | sha256sum | cut -c1-12)"
    export DOCKER_HOST="unix://$DOCKER_DIR/docker.sock"
    say "starting a private dockerd (data under ${DOCKER_DIR#"$REPO_ROOT"/}, log dockerd.log)"
    dockerd --data-root "$DOCKER_DIR/data" --exec-root "$DOCKERD_EXEC_ROOT" --pidfile "$DOCKER_DIR/dockerd.pid" \
        --host "$DOCKER_HOST" --iptables=false --ip-masq=false --bridge=none \
        </dev/null >"$DOCKER_DIR/dockerd.log" 2>&1 &
    DOCKERD_PID=$!
    if ! wait_until 60 daemon_answers; then
        tail -n 20 "$DOCKER_DIR/dockerd.log" >&2 || true
        stop_private_dockerd
        die "the private dockerd did not answer within 60 s (log: $DOCKER_DIR/dockerd.log)"
    fi
}

# --- the base image ------------------------------------------------------------------------------

BASE_KEY=$(printf '%s\n' "$SUITE" "${RUNTIME_PACKAGES[@]}" | sha256sum | cut -c1-12)
BASE_TAR="$IMAGE_DIR/base-$BASE_KEY.tar"
BASE_IMAGE="herald-base:$SUITE-$BASE_KEY"

make_base_tar() {
    [[ -s $BASE_TAR ]] && return 0
    need_packages debootstrap
    ((EUID == 0)) || die "debootstrap needs root"
    local root="$IMAGE_DIR/rootfs-$BASE_KEY"
    rm -rf -- "$root"
    mkdir -p -- "$root"
    say "debootstrap --variant=minbase $SUITE with ${RUNTIME_PACKAGES[*]} (once; log debootstrap.log)"
    local includes
    includes=$(IFS=,; echo "${RUNTIME_PACKAGES[*]}")
    if ! debootstrap --variant=minbase --include="$includes" "$SUITE" "$root" "$MIRROR" \
        >"$IMAGE_DIR/debootstrap.log" 2>&1; then
        tail -n 20 "$IMAGE_DIR/debootstrap.log" >&2
        die "debootstrap failed (log: $IMAGE_DIR/debootstrap.log)"
    fi
    # Nothing an image needs: downloaded packages, package lists, logs.
    rm -rf -- "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/* \
        "$root"/debootstrap
    tar --numeric-owner --xattrs -C "$root" -cf "$BASE_TAR.tmp" .
    mv -- "$BASE_TAR.tmp" "$BASE_TAR"
    rm -rf -- "$root"
}

import_base() {
    if docker image inspect "$BASE_IMAGE" >/dev/null 2>&1; then return 0; fi
    say "docker import ${BASE_TAR#"$REPO_ROOT"/} $BASE_IMAGE"
    docker import --change 'CMD ["/bin/bash"]' "$BASE_TAR" "$BASE_IMAGE" >/dev/null
}

# --- build ---------------------------------------------------------------------------------------

cmd_build() {
    [[ -x $HERALD ]] || die "no $HERALD: swift build -c release --static-swift-stdlib --product herald"
    mkdir -p "$IMAGE_DIR"
    make_base_tar
    docker_up
    trap stop_private_dockerd EXIT
    import_base
    local version context
    version=$("$HERALD" --version)
    context="$IMAGE_DIR/context"
    rm -rf -- "$context"
    mkdir -p -- "$context"
    cp -- "$SCRIPT_DIR/Dockerfile" "$context/Dockerfile"
    cp -- "$HERALD" "$context/herald"
    cp -- "$REPO_ROOT/topology/default.json" "$context/topology.json"
    say "docker build $IMAGE_NAME:$version (FROM $BASE_IMAGE; log docker-build.log)"
    if ! docker build --network host --build-arg "BASE=$BASE_IMAGE" --build-arg "VERSION=$version" \
        -t "$IMAGE_NAME:$version" -t "$IMAGE_NAME:latest" "$context" >"$IMAGE_DIR/docker-build.log" 2>&1; then
        tail -n 20 "$IMAGE_DIR/docker-build.log" >&2
        die "docker build failed (log: $IMAGE_DIR/docker-build.log)"
    fi
    rm -rf -- "$context"
    docker save -o "$IMAGE_DIR/$IMAGE_NAME-$version.tar" "$IMAGE_NAME:$version"
    local size
    size=$(docker image inspect --format '{{.Size}}' "$IMAGE_NAME:$version")
    say "built $IMAGE_NAME:$version ($((size / 1024 / 1024)) MiB), saved as .run/image/$IMAGE_NAME-$version.tar"
}

# --- test ----------------------------------------------------------------------------------------

# The demo plans (herald migrate --demo; Sources/HeraldTasks/Migrations/DemoData.swift): the test
# moves the every-five-minutes one to a few seconds from now.
PLAN=00000000-0000-4000-8000-0000000000a2
TEST_FAILED=0
CONTAINER=
TEST_RUN_DIR=

check() { echo "image-test: ok: $*" >&2; }
fail() { echo "image-test: FAIL: $*" >&2; TEST_FAILED=1; }

test_cleanup() {
    local rc=$?
    trap '' INT TERM
    if [[ -n $CONTAINER ]]; then
        echo "image-test: --- docker logs $CONTAINER (last 40 lines) ---" >&2
        docker logs "$CONTAINER" 2>&1 | tail -n 40 >&2 || true
        docker rm -f "$CONTAINER" >/dev/null 2>&1 || true
    fi
    if [[ -n $TEST_RUN_DIR ]]; then
        HERALD_RUN_DIR="$TEST_RUN_DIR" bash "$SERVICES" destroy >/dev/null 2>&1 || true
    fi
    stop_private_dockerd
    if ((rc == 0 && TEST_FAILED == 0)); then
        echo "image-test: PASS" >&2
    else
        echo "image-test: FAIL" >&2
        ((rc != 0)) || rc=1
    fi
    exit "$rc"
}

cmd_test() {
    trap test_cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
    docker_up
    local version image
    version=$("$HERALD" --version)
    image="$IMAGE_NAME:$version"
    docker image inspect "$image" >/dev/null 2>&1 || die "no image $image (make image)"
    say "testing $image ($(docker image inspect --format '{{.Id}}' "$image" | cut -c1-19))"

    # Private Redis and PostgreSQL on the host (127.0.0.1, free ports); the containers share the
    # host's network. The database starts empty: migrate --demo creates Dify's tables (look-alikes).
    bash "$SERVICES" reap
    TEST_RUN_DIR="$REPO_ROOT/.run/image-test-$$"
    export HERALD_RUN_DIR=$TEST_RUN_DIR
    bash "$SERVICES" start
    bash "$SERVICES" createdb herald_image
    # shellcheck source=/dev/null
    source "$TEST_RUN_DIR/env"
    local redis_url=$HERALD_TEST_REDIS_URL pg_port=$HERALD_TEST_PG_PORT redis_port=$HERALD_TEST_REDIS_PORT
    local database_url="postgresql://postgres@127.0.0.1:$pg_port/herald_image"
    local metrics_port
    metrics_port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    # shellcheck disable=SC2046 # the names, one word each
    unset HERALD_RUN_DIR $(compgen -v HERALD_TEST_)
    local env_args=(
        -e "HERALD_DATABASE_URL=$database_url" -e "HERALD_REDIS_URL=$redis_url"
        -e "CELERY_BROKER_URL=$redis_url" -e "HERALD_METRICS_ADDR=127.0.0.1:$metrics_port"
        -e "HERALD_INSTANCE_ID=image-test"
    )
    psql_q() { psql -X -q -t -A -h 127.0.0.1 -p "$pg_port" -U postgres -d herald_image -c "$1"; }
    in_image() { docker run --rm --network host "${env_args[@]}" "$image" "$@"; }

    echo "image-test: \$ herald --version; herald topology check (the image's /etc/herald/topology.json)" >&2
    local out
    out=$(in_image --version) || true
    if [[ $out == "$version" ]]; then check "herald --version in the image: $out"; else
        fail "herald --version in the image: '$out'"
    fi
    if out=$(in_image topology check 2>&1); then check "topology check: $(head -n1 <<<"$out")"; else
        fail "topology check: $out"
    fi
    out=$(docker run --rm --entrypoint /usr/bin/id "$image" -un 2>&1) || true
    if [[ $out == herald ]]; then check "runs as user '$out'"; else fail "runs as '$out', expected herald"; fi

    echo "image-test: \$ herald migrate --demo" >&2
    if in_image migrate --demo; then check "herald migrate --demo"; else
        fail "herald migrate --demo"
        exit 1
    fi

    # Confined as the Kubernetes manifest runs it (topology/kubernetes/herald.yaml): a read-only root,
    # no capabilities, no privilege escalation.
    CONTAINER="herald-image-test-$$"
    echo "image-test: \$ docker run -d --name $CONTAINER --network host --read-only --cap-drop ALL $image   (CMD run)" >&2
    docker run -d --name "$CONTAINER" --network host "${env_args[@]}" \
        --read-only --cap-drop ALL --security-opt no-new-privileges \
        --health-interval 1s --health-timeout 5s --health-retries 3 --health-start-period 30s \
        "$image" >/dev/null
    health() { [[ $(docker inspect --format '{{.State.Health.Status}}' "$CONTAINER") == healthy ]]; }
    if wait_until 60 health; then check "the container's health check (herald status) says healthy"; else
        fail "not healthy within 60 s: $(docker inspect --format '{{json .State.Health}}' "$CONTAINER" | tail -c 600)"
        exit 1
    fi
    if curl -fsS "http://127.0.0.1:$metrics_port/healthz" >/dev/null; then check "GET /healthz: 200"; else
        fail "GET /healthz did not answer 200"
    fi

    # The plan due in 3 s: the NOTIFY trigger of migrate tells the daemon, which arms a timer.
    local due
    due=$(psql_q "UPDATE workflow_schedule_plans SET next_run_at = date_trunc('second', now() AT TIME ZONE 'UTC')
                  + interval '3 seconds' WHERE id = '$PLAN' RETURNING next_run_at")
    [[ -n $due ]] || { fail "could not move demo plan $PLAN"; exit 1; }
    echo "image-test: demo plan $PLAN made due at $due UTC" >&2
    fired() {
        [[ $(psql_q "SELECT count(*) FROM herald.schedule_fire_log WHERE plan_id = '$PLAN'
                     AND scheduled_at = '$due' AND enqueued_at IS NOT NULL") == 1 ]]
    }
    if wait_until 30 fired; then check "the plan fired at its time and the fire was enqueued"; else
        fail "no enqueued fire of $PLAN at $due within 30 s"
    fi
    echo "image-test: \$ herald fires $PLAN" >&2
    in_image fires "$PLAN" >&2 || fail "herald fires"
    local queued
    queued=$(redis-cli -p "$redis_port" lrange schedule_executor 0 -1)
    if grep -q "$PLAN" <<<"$queued" && grep -q 'tasks.workflow_schedule_tasks.run_schedule_trigger' <<<"$queued"; then
        check "Celery message run_schedule_trigger($PLAN) on schedule_executor ($(redis-cli -p "$redis_port" llen schedule_executor) waiting)"
    else
        fail "no run_schedule_trigger message for $PLAN on schedule_executor"
    fi
    echo "image-test: \$ docker exec $CONTAINER herald status" >&2
    docker exec "$CONTAINER" herald status >&2 || fail "herald status in the container"

    echo "image-test: \$ docker stop $CONTAINER (SIGTERM)" >&2
    docker stop --time 30 "$CONTAINER" >/dev/null
    local code
    code=$(docker inspect --format '{{.State.ExitCode}}' "$CONTAINER")
    if [[ $code == 0 ]]; then check "stopped on SIGTERM with exit code 0"; else fail "exit code $code after SIGTERM"; fi
    ((TEST_FAILED == 0))
}

case ${1:-} in
    build) cmd_build ;;
    test) cmd_test ;;
    *) echo "usage: image.sh build|test" >&2; exit 2 ;;
esac
