#!/usr/bin/env bash
# Installs what is missing and runs the real test servers on loopback, idempotently:
#   Redis 7 (Debian package)             redis://127.0.0.1:6379
#   PostgreSQL 15 (Debian package)       postgres://mcp:mcp@127.0.0.1:5432/mcp_test
#   Neo4j 5.26 Community (Maven Central) bolt://127.0.0.1:7687, embedded in a small Java
#                                        launcher (scripts/neo4j), auth off
#
#   scripts/services.sh up [redis|postgres|neo4j ...]   install + start, wait, print exports
#   scripts/services.sh down [service ...]              stop and wait until stopped
#   scripts/services.sh status                          one line per service
#   scripts/services.sh env                             the export lines only
#
# `eval "$(scripts/services.sh up)"` sets MCP_TEST_{REDIS,POSTGRES,NEO4J}_URL. Progress goes
# to stderr, exports to stdout. Data and logs live under .services/ (PostgreSQL's data dir is
# under /var/tmp because the server must run as the `postgres` user, which cannot enter a
# checkout under /root).
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE="$ROOT/.services"
PG_BIN=/usr/lib/postgresql/15/bin
# One PostgreSQL cluster per machine (the port is fixed anyway), shared by every checkout, so a
# `down` + `up` from any checkout (the outage tests do that) brings back the same databases.
PG_BASE=/var/tmp/mcp-services-pg
PG_DIR="$PG_BASE/machine"
# The cluster a `down` stopped, restarted by the next `up` (it may be another checkout's).
PG_LAST="$PG_BASE/last-stopped"
REDIS_PORT=6379 PG_PORT=5432 NEO4J_PORT=7687
ALL=(redis postgres neo4j)

log() { printf '[services] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

url_of() {
  case "$1" in
    redis) echo "redis://127.0.0.1:$REDIS_PORT" ;;
    postgres) echo "postgres://mcp:mcp@127.0.0.1:$PG_PORT/mcp_test" ;;
    neo4j) echo "bolt://127.0.0.1:$NEO4J_PORT" ;;
  esac
}
var_of() { echo "MCP_TEST_$(echo "$1" | tr a-z A-Z)_URL"; }
export_line() { echo "export $(var_of "$1")=$(url_of "$1")"; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until "$2..." succeeds, for at most $1 seconds.
wait_for() {
  local limit=$1; shift
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.5
  done
}

apt_updated=
apt_install() {
  if [[ -z $apt_updated ]]; then
    log "apt-get update"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    apt_updated=1
  fi
  log "installing $*"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

# --- Redis -------------------------------------------------------------------------------
redis_ready() { redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

redis_up() {
  command -v redis-server >/dev/null || apt_install redis-server
  redis_ready && return 0
  mkdir -p "$STATE/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save '' \
    --appendonly no --dir "$STATE/redis" --pidfile "$STATE/redis/redis.pid" \
    --logfile "$STATE/redis/redis.log" >&2
  wait_for 30 redis_ready || { tail -20 "$STATE/redis/redis.log" >&2; die "redis did not start"; }
}

redis_down() {
  redis_ready || return 0
  redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  wait_for 15 bash -c "! redis-cli -h 127.0.0.1 -p $REDIS_PORT ping" || die "redis did not stop"
}

# --- PostgreSQL --------------------------------------------------------------------------
pg_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }
as_postgres() { su postgres -s /bin/bash -c "$*"; }

postgres_up() {
  [[ -x $PG_BIN/postgres ]] || apt_install postgresql-15
  id postgres >/dev/null 2>&1 || useradd --system --home /var/lib/postgresql postgres
  if ! pg_ready; then
    local dir="$PG_DIR" last
    last=$(cat "$PG_LAST" 2>/dev/null || true)
    [[ -n $last && -f $last/data/PG_VERSION ]] && dir="$last"
    mkdir -p "$dir"
    chown postgres "$PG_BASE" "$dir"
    if [[ ! -f $dir/data/PG_VERSION ]]; then
      log "initdb in $dir/data"
      as_postgres "$PG_BIN/initdb -D $dir/data -A trust -U postgres" >/dev/null
    fi
    as_postgres "$PG_BIN/pg_ctl -D $dir/data -l $dir/log -w -t 30 \
      -o '-p $PG_PORT -k $dir -c listen_addresses=127.0.0.1' start" >/dev/null ||
      { tail -20 "$dir/log" >&2; die "postgres did not start"; }
  fi
  wait_for 30 pg_ready || die "postgres does not answer"
  local psql=(psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tA)
  if [[ -z $("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = 'mcp'") ]]; then
    "${psql[@]}" -c "CREATE ROLE mcp LOGIN SUPERUSER PASSWORD 'mcp'" >/dev/null
  fi
  if [[ -z $("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = 'mcp_test'") ]]; then
    "${psql[@]}" -c "CREATE DATABASE mcp_test OWNER mcp" >/dev/null
  fi
}

postgres_down() {
  pg_ready || return 0
  # Ask the running server for its data directory: it may have been started from another
  # checkout, whose data directory differs from this one's.
  local data
  data=$(psql -X -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -tAc 'SHOW data_directory' 2>/dev/null) ||
    data="$PG_DIR/data"
  as_postgres "$PG_BIN/pg_ctl -D $data -m fast -w stop" >/dev/null
  mkdir -p "$PG_BASE"
  dirname "$data" >"$PG_LAST"
  wait_for 15 bash -c "! $PG_BIN/pg_isready -q -h 127.0.0.1 -p $PG_PORT" || die "postgres did not stop"
}

# --- Neo4j -------------------------------------------------------------------------------
NEO4J_PROJECT="$ROOT/scripts/neo4j"
NEO4J_JAR="$NEO4J_PROJECT/target/neo4j-launcher-1.0.0.jar"

neo4j_build() {
  local stamp="$NEO4J_PROJECT/target/.built"
  if [[ -f $stamp && $stamp -nt $NEO4J_PROJECT/pom.xml &&
        $stamp -nt $NEO4J_PROJECT/src/main/java/dev/mcpservices/Neo4jLauncher.java ]]; then
    return 0
  fi
  command -v mvn >/dev/null || apt_install maven
  log "building the Neo4j launcher (jars from Maven Central; first run downloads ~150 MB)"
  (cd "$NEO4J_PROJECT" && mvn -q -B -Dstyle.color=never -DskipTests package dependency:copy-dependencies >&2)
  touch "$stamp"
}

# True when a launcher runs whose jar or data directory has been deleted (its checkout was
# removed while it ran); such a server must be restarted from this checkout.
neo4j_stale() {
  local pid args
  for pid in $(pgrep -f dev.mcpservices.Neo4jLauncher || true); do
    args=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || continue
    local jar=${args#*-cp } data=${args#*Neo4jLauncher }
    jar=${jar%%:*}
    data=${data%% *}
    [[ -f $jar && -d $data ]] || return 0
  done
  return 1
}

neo4j_up() {
  if neo4j_stale; then
    log "the running Neo4j lost its files (checkout removed); restarting it from here"
    neo4j_down
  fi
  port_open "$NEO4J_PORT" && return 0
  neo4j_build
  mkdir -p "$STATE/neo4j"
  log "starting Neo4j on 127.0.0.1:$NEO4J_PORT"
  nohup java -Xms256m -Xmx1g -cp "$NEO4J_JAR:$NEO4J_PROJECT/target/dependency/*" \
    dev.mcpservices.Neo4jLauncher "$STATE/neo4j/data" "$NEO4J_PORT" \
    >"$STATE/neo4j/neo4j.log" 2>&1 &
  echo $! >"$STATE/neo4j/neo4j.pid"
  wait_for 180 grep -q "neo4j ready" "$STATE/neo4j/neo4j.log" ||
    { tail -30 "$STATE/neo4j/neo4j.log" >&2; die "neo4j did not start"; }
  wait_for 30 port_open "$NEO4J_PORT" || die "neo4j bolt port is closed"
}

neo4j_down() {
  local pidfile="$STATE/neo4j/neo4j.pid" pid
  # The launcher may have been started from another checkout: find it by its class name.
  for pid in $(cat "$pidfile" 2>/dev/null) $(pgrep -f dev.mcpservices.Neo4jLauncher || true); do
    kill "$pid" 2>/dev/null || continue
    wait_for 60 bash -c "! kill -0 $pid" || die "neo4j did not stop"
  done
  rm -f "$pidfile"
  wait_for 15 bash -c "! (exec 3<>/dev/tcp/127.0.0.1/$NEO4J_PORT)" || die "neo4j still listens"
}

# --- Commands ----------------------------------------------------------------------------
running() {
  case "$1" in
    redis) redis_ready ;;
    postgres) pg_ready ;;
    neo4j) port_open "$NEO4J_PORT" ;;
  esac
}

check_names() {
  local name
  for name in "$@"; do
    case "$name" in redis | postgres | neo4j) ;; *) die "unknown service '$name' (redis, postgres, neo4j)" ;; esac
  done
}

command=${1:-}
shift || true
services=("$@")
((${#services[@]})) || services=("${ALL[@]}")
check_names "${services[@]}"

case "$command" in
  up)
    for name in "${services[@]}"; do
      started=$SECONDS
      "${name}_up"
      log "$name ready ($(url_of "$name")) in $((SECONDS - started)) s"
    done
    for name in "${services[@]}"; do export_line "$name"; done
    ;;
  down)
    for name in "${services[@]}"; do
      "${name}_down"
      log "$name stopped"
    done
    ;;
  status)
    for name in "${ALL[@]}"; do
      if running "$name"; then state=running; else state=stopped; fi
      printf '%-9s %-8s %s\n' "$name" "$state" "$(url_of "$name")"
    done
    ;;
  env)
    for name in "${services[@]}"; do export_line "$name"; done
    ;;
  *)
    sed -n '2,14p' "$0" >&2
    exit 2
    ;;
esac
