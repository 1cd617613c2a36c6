#!/usr/bin/env bash
# The servers the shared-store tests and benchmarks run against, private to one run:
# a PostgreSQL cluster (password login) and an S3-compatible server (moto), both on 127.0.0.1
# and free ports, under DIR. Installs them when missing (Debian's postgresql, PyPI's moto in a
# venv under ~/.cache/sameframe-venv).
#
#   eval "$(scripts/shared-servers.sh start DIR)"   # prints the SAMEFRAME_TEST_* exports
#   scripts/shared-servers.sh stop DIR
#   scripts/shared-servers.sh pg-stop DIR | pg-start DIR   # fault tests: the database goes away
#                                                          # (immediately) and comes back
# With SAMEFRAME_TEST_PG_SSL_DIR set (a folder holding server.crt and server.key), the database
# takes TLS connections only.
set -euo pipefail
cmd="${1:-}" dir="${2:-}"
[[ -n "$cmd" && -n "$dir" ]] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }
say() { echo "shared-servers: $*" >&2; }
sudo=""
[[ $(id -u) -ne 0 ]] && sudo="sudo"

pg_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return
  fi
  local b
  b=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
  if [[ -z "$b" ]]; then
    say "installing PostgreSQL (Debian package postgresql)"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >/dev/null
    b=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  fi
  echo "$b"
}

moto_bin() {
  if command -v moto_server >/dev/null 2>&1; then
    command -v moto_server
    return
  fi
  local venv="$HOME/.cache/sameframe-venv"
  if [[ ! -x "$venv/bin/moto_server" ]]; then
    say "installing moto (PyPI, server mode) into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q 'moto[server]'
  fi
  echo "$venv/bin/moto_server"
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Run as the cluster's owner: initdb refuses root, so root runs it as `postgres`.
as_owner() {
  if [[ $(id -u) -eq 0 ]]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  mkdir -p "$dir"
  dir=$(realpath "$dir")
  local bin moto pg_port s3_port
  bin=$(pg_bin)
  moto=$(moto_bin)
  pg_port=$(free_port)
  s3_port=$(free_port)
  local pw="sameframe-test-$(date +%s%N | sha256sum | head -c 16)"
  mkdir -p "$dir/pg"
  echo "$pw" >"$dir/pg/pw"
  if [[ $(id -u) -eq 0 ]]; then
    id postgres >/dev/null 2>&1 || useradd --system --home-dir /var/lib/postgresql --shell /bin/false postgres
    chown -R postgres "$dir/pg"
    chmod 755 "$dir"
  fi
  as_owner "$bin/initdb" -D "$dir/pg/data" -U sameframe_test --pwfile="$dir/pg/pw" \
    -A scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/pg/initdb.log" 2>&1 \
    || { cat "$dir/pg/initdb.log" >&2; exit 1; }
  echo "$bin" >"$dir/pg/bin"
  local ssl=""
  if [[ -n "${SAMEFRAME_TEST_PG_SSL_DIR:-}" ]]; then
    cp "$SAMEFRAME_TEST_PG_SSL_DIR/server.crt" "$SAMEFRAME_TEST_PG_SSL_DIR/server.key" "$dir/pg/data/"
    chmod 600 "$dir/pg/data/server.key"
    [[ $(id -u) -eq 0 ]] && chown postgres "$dir/pg/data/server.crt" "$dir/pg/data/server.key"
    sed -i 's/^host /hostssl /' "$dir/pg/data/pg_hba.conf"
    ssl="-c ssl=on"
  fi
  echo "-c listen_addresses=127.0.0.1 -p $pg_port -k $dir/pg -c max_connections=300 $ssl" >"$dir/pg/options"
  pg_start
  nohup "$moto" -H 127.0.0.1 -p "$s3_port" >"$dir/moto.log" 2>&1 &
  echo $! >"$dir/moto.pid"
  for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$s3_port/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  curl -fsS -X PUT "http://127.0.0.1:$s3_port/sameframe-test" >/dev/null \
    || { cat "$dir/moto.log" >&2; exit 1; }
  say "PostgreSQL on 127.0.0.1:$pg_port, S3 (moto) on 127.0.0.1:$s3_port, under $dir"
  cat <<EOF
export SAMEFRAME_TEST_PG="postgres://sameframe_test@127.0.0.1:$pg_port/postgres"
export SAMEFRAME_TEST_PG_PASSWORD="$pw"
export SAMEFRAME_TEST_S3_ENDPOINT="http://127.0.0.1:$s3_port"
export SAMEFRAME_TEST_S3_BUCKET="sameframe-test"
export SAMEFRAME_TEST_SERVERS="$dir"
EOF
}

pg_start() {
  as_owner "$(cat "$dir/pg/bin")/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 60 \
    -o "$(cat "$dir/pg/options")" start >/dev/null || { cat "$dir/pg/server.log" >&2; exit 1; }
}

pg_stop() {
  as_owner "$(cat "$dir/pg/bin")/pg_ctl" -D "$dir/pg/data" -m immediate -w stop >/dev/null
}

stop() {
  [[ -d "$dir" ]] || return 0
  if [[ -f "$dir/pg/bin" ]]; then
    as_owner "$(cat "$dir/pg/bin")/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [[ -f "$dir/moto.pid" ]]; then
    kill "$(cat "$dir/moto.pid")" 2>/dev/null || true
  fi
}

case "$cmd" in
  start) start ;;
  stop) stop ;;
  pg-start) dir=$(realpath "$dir"); pg_start ;;
  pg-stop) dir=$(realpath "$dir"); pg_stop ;;
  *) echo "usage: $0 start|stop|pg-start|pg-stop DIR" >&2; exit 2 ;;
esac
