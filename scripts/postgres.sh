#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests: a cluster made with initdb in a temporary
# folder, on a free loopback port, with fsync off (tests only), trusting local connections.
#
#   scripts/postgres.sh start DIR   starts one in DIR (created) and prints its admin URL
#   scripts/postgres.sh stop DIR    stops it and removes DIR
#
# Uses Debian's postgresql package (installed when missing). The server refuses to run as
# root, so as root the cluster belongs to the `postgres` user.
set -euo pipefail

bin_dir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  return 1
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

case "${1:-}" in
start)
  dir="${2:?usage: postgres.sh start DIR}"
  if ! bin=$(bin_dir); then
    echo "postgres.sh: installing PostgreSQL (apt-get install postgresql)" >&2
    export DEBIAN_FRONTEND=noninteractive
    sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq >&2
    $sudo_cmd apt-get install -y -qq postgresql >&2
    bin=$(bin_dir)
  fi
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
  as_owner "$bin/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2; exit 1; }
  port=$(free_port)
  # Enough connections for the suite's tests running in parallel, each with its own pool.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w start \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=500" \
    >/dev/null || { cat "$dir/log" >&2; exit 1; }
  echo "postgres://postgres@127.0.0.1:$port"
  ;;
stop)
  dir="${2:?usage: postgres.sh stop DIR}"
  if bin=$(bin_dir) && [ -d "$dir/data" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -w -m immediate stop >/dev/null 2>&1 || true
  fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: scripts/postgres.sh start DIR | stop DIR" >&2
  exit 2
  ;;
esac
