#!/bin/sh
# up.sh trains the shipped corpus on a local Docker cluster (docker-compose.yml): it builds
# the static binary and the skipgrid:local image, starts one coordinator, two PS shards and
# three workers, waits for the coordinator to finish, tears the cluster down and leaves
# vectors.bin, vocab.txt and run.json in SG_OUT (./out). It exits with the coordinator's
# status. Job settings come from SKIPGRID_* variables (see docker-compose.yml), e.g.
#
#   SKIPGRID_EPOCHS=3 SKIPGRID_MIN_COUNT=2 deploy/up.sh
#
# SG_KEEP=1 leaves the stopped containers and the shards' checkpoint volumes for inspection;
# the next run removes them before it starts, since each run is a new job.
set -eu
cd "$(dirname "$0")/.."

# Compose v2 (`docker compose`) when the plugin is there, else docker-compose v1.
if docker compose version >/dev/null 2>&1; then
	dc="docker compose"
else
	dc="docker-compose"
fi

echo "building the static binary and the image ${SG_IMAGE:-skipgrid:local}"
CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o deploy/bin/skipgrid ./cmd/skipgrid
docker build -q -t "${SG_IMAGE:-skipgrid:local}" deploy

# The nodes run as a numeric user: you, or 65532 when you are root. The output folder
# must be theirs to write.
SG_OUT=${SG_OUT:-./out}
mkdir -p "$SG_OUT"
if [ "$(id -u)" -eq 0 ]; then
	SG_UID=${SG_UID:-65532} SG_GID=${SG_GID:-65532}
	chown "$SG_UID:$SG_GID" "$SG_OUT"
else
	SG_UID=${SG_UID:-$(id -u)} SG_GID=${SG_GID:-$(id -g)}
fi
export SG_OUT SG_UID SG_GID

down() {
	if [ "${SG_KEEP:-}" != 1 ]; then
		$dc down -v --remove-orphans >/dev/null 2>&1 || true
	fi
}
trap down EXIT INT TERM

# Compose v1 warns, once per service and command, that it ignores the Swarm-only
# endpoint_mode; those lines are left out.
quiet() { grep -v 'deploy sub-keys are not supported' >&2 || true; }

# Each run is a new job: a shard that found an earlier run's checkpoints in its volume would
# restore them, and the coordinator would refuse them and fail the job.
$dc down -v --remove-orphans >/dev/null 2>&1 || true

start=$(date +%s)
$dc up -d --no-build 2>&1 | quiet
id=$($dc ps -q coordinator 2>/dev/null)
if [ -z "$id" ]; then
	echo "the cluster did not start" >&2
	exit 1
fi
echo "training; status at http://localhost:${SG_HTTP_PORT:-7080}/status"
$dc logs -f --no-color coordinator 2>&1 | quiet &
logs=$!
rc=$(docker wait "$id")
kill "$logs" 2>/dev/null || true
echo "coordinator exited with status $rc after $(($(date +%s) - start)) s; output in $SG_OUT:"
ls -l "$SG_OUT"
exit "$rc"
