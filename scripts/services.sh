#!/usr/bin/env bash
# Make sure the local services the test suite talks to are running.
#
#   bash scripts/services.sh          PostgreSQL, Redis, NATS (required)
#   bash scripts/services.sh --all    also RabbitMQ, Mosquitto, MariaDB (optional)
#
# For each service: if its port on 127.0.0.1 accepts TCP connections it is left
# alone ("up"); otherwise it is started with the command below and the port is
# polled for up to WAIT_SECONDS ("started" or "FAILED to start ...").
# Exits 1 if a required service cannot be brought up; a failing optional service
# is reported but does not change the exit status.
#
# The start commands mirror the machine set-up notes (services.md) so this
# script also works on a machine that does not have those notes. It only starts
# services: it never changes their configuration.
set -uo pipefail

WAIT_SECONDS=${WAIT_SECONDS:-30}
HOST=127.0.0.1

usage() { sed -n '2,15s/^# \{0,1\}//p' "$0"; }

all=0
for arg in "$@"; do
  case "$arg" in
    --all) all=1 ;;
    -h | --help) usage; exit 0 ;;
    *) echo "services.sh: unknown argument: $arg" >&2; usage >&2; exit 2 ;;
  esac
done

# name|port|required(1/0)
services=(
  "postgres|5432|1"
  "redis|6379|1"
  "nats|4222|1"
)
if ((all)); then
  services+=(
    "rabbitmq|5672|0"
    "mosquitto|1883|0"
    "mariadb|3306|0"
  )
fi

# --- start commands (one per service; stdout/stderr go to a temp log) --------

start_postgres() {
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql)" main start
}

start_redis() {
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log
}

start_nats() {
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
}

start_rabbitmq() {
  rabbitmq-server -detached
}

start_mosquitto() {
  mosquitto -d -c /etc/mosquitto/mosquitto.conf
}

start_mariadb() {
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
}

# Where to look when a service does not come up.
log_hint() {
  case "$1" in
    postgres) echo "/var/log/postgresql/" ;;
    redis) echo "/var/log/redis/ci.log" ;;
    nats) echo "/var/log/nats-server.log" ;;
    rabbitmq) echo "/var/log/rabbitmq/" ;;
    mosquitto) echo "/var/log/mosquitto/" ;;
    mariadb) echo "/var/log/mysql/ or the journal" ;;
  esac
}

# --- helpers -----------------------------------------------------------------

# True if something accepts TCP connections on $HOST:$1 (bash /dev/tcp, 2 s cap).
port_open() {
  timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$HOST" "$1" 2>/dev/null
}

# Poll until the port opens or the deadline (epoch seconds) passes.
wait_for_port() {
  local port=$1 deadline=$2
  until port_open "$port"; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

# --- phase 1: start whatever is down -----------------------------------------

declare -A state=() detail=()
logdir=$(mktemp -d "${TMPDIR:-/tmp}/busbar-services.XXXXXX")
trap 'rm -rf "$logdir"' EXIT

for entry in "${services[@]}"; do
  IFS='|' read -r name port _ <<<"$entry"
  if port_open "$port"; then
    state[$name]=up
    continue
  fi
  if "start_$name" >"$logdir/$name.log" 2>&1 </dev/null; then
    state[$name]=starting
  else
    rc=$?
    state[$name]=failed
    last=$(grep -v '^[[:space:]]*$' "$logdir/$name.log" | tail -n 1)
    detail[$name]="start command exited with $rc${last:+: $last}"
  fi
done

# --- phase 2: wait for the ports of the services just started ----------------

deadline=$((SECONDS + WAIT_SECONDS))
failed_required=0
for entry in "${services[@]}"; do
  IFS='|' read -r name port required <<<"$entry"
  if [[ ${state[$name]} == starting ]]; then
    if wait_for_port "$port" "$deadline"; then
      state[$name]=started
    else
      state[$name]=failed
      detail[$name]="port $port not accepting connections after ${WAIT_SECONDS}s; see $(log_hint "$name")"
    fi
  fi
  case ${state[$name]} in
    up) echo "$name: up" ;;
    started) echo "$name: started" ;;
    failed)
      if ((required)); then
        echo "$name: FAILED to start (${detail[$name]})"
        failed_required=1
      else
        echo "$name: FAILED to start (${detail[$name]}) [optional]"
      fi
      ;;
  esac
done

exit "$failed_required"
