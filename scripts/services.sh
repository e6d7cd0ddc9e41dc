#!/usr/bin/env bash
# Installs (when missing) and runs the servers the tests and demos need, on loopback:
#
#   PostgreSQL 15   127.0.0.1:5432   wal_level=logical, role and database `cqrs`
#   Redis 7         127.0.0.1:6379
#   Apache Kafka 4  127.0.0.1:9092   KRaft, one node as broker and controller
#   FerretDB 1.24   127.0.0.1:27017  MongoDB wire protocol, data in PostgreSQL
#   Debezium 3.6    127.0.0.1:8083   Kafka Connect (standalone, REST API) with
#                                    Debezium's PostgreSQL connector on its classpath
#   MariaDB 10.11   127.0.0.1:3306   binlog in ROW format, user and database `cqrs`
#                                    (the `mysql` service; MySQL is in no registry
#                                    reachable here)
#   browser         (no daemon)      Chromium and chromedriver, for the web page's
#                                    test, which starts them itself
#   Toxiproxy 2.5   127.0.0.1:8474   TCP fault proxy (its HTTP API; proxies are made
#                                    by the reliability tests, on ports of their own)
#
# Usage: scripts/services.sh COMMAND [SERVICE...]
#   up       install what is missing, start the services, wait until they answer
#   down     stop them
#   start    start (no install step; fails if something is missing)
#   stop     stop
#   restart  stop, then start
#   crash    kill with SIGKILL, as a crash would (postgres: its postmaster; for
#            failure tests; start brings the service back)
#   status   say which answer
#   env      print the environment variables the tests read, as `export` lines
#   logs     print the end of each service's log
# SERVICE is postgres, redis, kafka, mongo, debezium, mysql, browser or toxiproxy; none means
# all (in that order; mongo needs postgres, debezium needs postgres and kafka).
#
# Downloads and builds are cached in $CQRS_CACHE (default ~/.cache/cqrs-rs) so a
# second `up` is quick; data and logs live in $CQRS_DATA (default /var/tmp/cqrs-rs).
# Needs root for apt-get (a Debian 12 machine, no Docker needed). (docker-compose.yml
# runs MADA itself against the official images of these servers; the tests do not
# use it.)
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
CACHE="${CQRS_CACHE:-$HOME/.cache/cqrs-rs}"
DATA="${CQRS_DATA:-/var/tmp/cqrs-rs}"

PG_PORT="${CQRS_PG_PORT:-5432}"
REDIS_PORT="${CQRS_REDIS_PORT:-6379}"
KAFKA_PORT="${CQRS_KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${CQRS_KAFKA_CONTROLLER_PORT:-9093}"
# A second listener for the fault tests: the broker listens on KAFKA_FAULTY_PORT and
# tells clients to connect to KAFKA_PROXIED_PORT, where a test's Toxiproxy proxy
# forwards to it. A client bootstrapped there sends every request through the
# proxy (on the first listener it would learn the broker's own address and bypass
# it). Nothing listens on KAFKA_PROXIED_PORT outside such a test.
KAFKA_FAULTY_PORT="${CQRS_KAFKA_FAULTY_PORT:-9094}"
KAFKA_PROXIED_PORT="${CQRS_KAFKA_PROXIED_PORT:-9095}"
MONGO_PORT="${CQRS_MONGO_PORT:-27017}"
MYSQL_PORT="${CQRS_MYSQL_PORT:-3306}"
TOXIPROXY_PORT="${CQRS_TOXIPROXY_PORT:-8474}"

PG_VERSION=15
PG_BIN="/usr/lib/postgresql/$PG_VERSION/bin"
PG_DATA="$DATA/postgres/data"
PG_RUN="$DATA/postgres/run"
KAFKA_VERSION=4.1.1
KAFKA_LIBS="$CACHE/kafka-$KAFKA_VERSION/libs"
FERRETDB_VERSION=v1.24.2
FERRETDB_BIN="$CACHE/bin/ferretdb-$FERRETDB_VERSION"

DEBEZIUM_VERSION=3.6.1.Final
CONNECT_PORT="${CQRS_CONNECT_PORT:-8083}"
CONNECT_LIBS="$CACHE/debezium-$DEBEZIUM_VERSION/libs"

ALL=(postgres redis kafka mongo debezium mysql browser toxiproxy)

log() { printf '[services] %s\n' "$*" >&2; }
die() { printf '[services] error: %s\n' "$*" >&2; exit 1; }

# --- helpers -----------------------------------------------------------------

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_until SECONDS WHAT COMMAND...: runs COMMAND until it succeeds.
wait_until() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      return 1
    fi
    sleep 0.2
  done
  log "$what is up"
}

apt_updated=0
# ensure_apt PACKAGE...: installs the Debian packages that are missing, without
# letting their install scripts start any service.
ensure_apt() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  ((${#missing[@]})) || return 0
  [ "$(id -u)" = 0 ] || die "installing ${missing[*]} needs root (apt-get)"
  log "installing ${missing[*]} (apt-get)"
  local policy=/usr/sbin/policy-rc.d created_policy=0
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && created_policy=1
  fi
  if ((apt_updated == 0)); then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    apt_updated=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
  ((created_policy)) && rm -f "$policy"
  return 0
}

pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# stop_pid PIDFILE NAME: SIGTERM, wait up to 30 s, then SIGKILL.
stop_pid() {
  local pidfile=$1 name=$2
  if ! pid_alive "$pidfile"; then
    rm -f "$pidfile"
    return 0
  fi
  local pid; pid=$(cat "$pidfile")
  kill "$pid" 2>/dev/null || true
  for _ in $(seq 150); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name did not stop in 30 s; killing it"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
  log "$name stopped"
}

# --- PostgreSQL ----------------------------------------------------------------

postgres_install() {
  ensure_apt "postgresql-$PG_VERSION"
}

postgres_ready() { "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT"; }

postgres_start() {
  [ -x "$PG_BIN/postgres" ] || die "PostgreSQL $PG_VERSION is not installed; run: scripts/services.sh up postgres"
  if postgres_ready; then log "postgres is already up"; return 0; fi
  mkdir -p "$PG_DATA" "$PG_RUN"
  chown -R postgres:postgres "$DATA/postgres"
  chmod 700 "$PG_DATA"
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    log "creating a PostgreSQL cluster in $PG_DATA"
    runuser -u postgres -- "$PG_BIN/initdb" -D "$PG_DATA" -U postgres -E UTF8 --no-locale \
      --auth-local=trust --auth-host=trust >"$DATA/postgres/initdb.log"
  fi
  # After a crash, backends of the killed postmaster may hold its shared memory for
  # a moment (the new one refuses to start meanwhile): try again for a few seconds.
  local tries=0
  until runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$DATA/postgres/postgres.log" -w -t 60 \
    -o "-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$PG_RUN \
        -c wal_level=logical -c max_replication_slots=64 -c max_wal_senders=64 \
        -c max_connections=300 -c shared_buffers=256MB" start >/dev/null; do
    tries=$((tries + 1))
    [ "$tries" -lt 10 ] || die "PostgreSQL did not start; see $DATA/postgres/postgres.log"
    sleep 1
  done
  wait_until 60 postgres postgres_ready || die "PostgreSQL does not answer on port $PG_PORT"
  local psql=("$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1)
  "${psql[@]}" -d postgres >/dev/null <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cqrs') THEN
    CREATE ROLE cqrs LOGIN SUPERUSER REPLICATION PASSWORD 'cqrs';
  END IF;
END $$;
SQL
  for db in cqrs ferretdb; do
    if [ -z "$("${psql[@]}" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")" ]; then
      "${psql[@]}" -d postgres -c "CREATE DATABASE $db OWNER cqrs" >/dev/null
    fi
  done
}

postgres_stop() {
  if [ -f "$PG_DATA/postmaster.pid" ]; then
    runuser -u postgres -- "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>&1 || true
    log "postgres stopped"
  fi
}

postgres_log() { echo "$DATA/postgres/postgres.log"; }

# --- Redis ---------------------------------------------------------------------

redis_install() { ensure_apt redis-server redis-tools; }

redis_ready() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = PONG ]; }

redis_start() {
  command -v redis-server >/dev/null || die "Redis is not installed; run: scripts/services.sh up redis"
  if redis_ready; then log "redis is already up"; return 0; fi
  mkdir -p "$DATA/redis"
  redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --daemonize yes --protected-mode no \
    --dir "$DATA/redis" --pidfile "$DATA/redis/redis.pid" --logfile "$DATA/redis/redis.log" \
    --save '' --appendonly no >/dev/null
  wait_until 30 redis redis_ready || die "Redis does not answer; see $DATA/redis/redis.log"
}

redis_stop() {
  if redis_ready; then
    redis-cli -h 127.0.0.1 -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
  stop_pid "$DATA/redis/redis.pid" redis
}

redis_log() { echo "$DATA/redis/redis.log"; }

redis_pidfile() { echo "$DATA/redis/redis.pid"; }

# --- Kafka ---------------------------------------------------------------------

kafka_install() {
  command -v java >/dev/null || ensure_apt openjdk-17-jre-headless
  if [ -f "$KAFKA_LIBS/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || ensure_apt maven
  log "fetching Apache Kafka $KAFKA_VERSION from Maven Central"
  rm -rf "$KAFKA_LIBS"
  mvn -q -B -f "$here/kafka/pom.xml" -Dmaven.repo.local="$CACHE/m2" -Dkafka.version="$KAFKA_VERSION" \
    dependency:copy-dependencies -DoutputDirectory="$KAFKA_LIBS" >&2
  touch "$KAFKA_LIBS/.complete"
}

kafka_ready() { port_open "$KAFKA_PORT" && grep -q 'Kafka Server started' "$DATA/kafka/kafka.log"; }

KAFKA_JAVA=(java -Xms256m -Xmx1g -XX:+UseG1GC -Djava.awt.headless=true
  -Dlog4j2.configurationFile="$here/kafka/log4j2.properties" -cp "$KAFKA_LIBS/*")

kafka_start() {
  [ -f "$KAFKA_LIBS/.complete" ] || die "Kafka is not installed; run: scripts/services.sh up kafka"
  if pid_alive "$DATA/kafka/kafka.pid" && port_open "$KAFKA_PORT"; then log "kafka is already up"; return 0; fi
  mkdir -p "$DATA/kafka"
  cat >"$DATA/kafka/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,FAULTY://127.0.0.1:$KAFKA_FAULTY_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,FAULTY://127.0.0.1:$KAFKA_PROXIED_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,FAULTY:PLAINTEXT
log.dirs=$DATA/kafka/data
num.partitions=1
default.replication.factor=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
delete.topic.enable=true
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
EOF
  if [ ! -f "$DATA/kafka/data/meta.properties" ]; then
    log "formatting Kafka's storage (KRaft, standalone)"
    local cluster; cluster=$("${KAFKA_JAVA[@]}" kafka.tools.StorageTool random-uuid)
    "${KAFKA_JAVA[@]}" kafka.tools.StorageTool format --standalone -t "$cluster" \
      -c "$DATA/kafka/server.properties" >"$DATA/kafka/format.log" 2>&1 \
      || die "formatting Kafka's storage failed; see $DATA/kafka/format.log"
  fi
  : >"$DATA/kafka/kafka.log"
  nohup "${KAFKA_JAVA[@]}" kafka.Kafka "$DATA/kafka/server.properties" </dev/null >>"$DATA/kafka/kafka.log" 2>&1 &
  echo $! >"$DATA/kafka/kafka.pid"
  wait_until 120 kafka kafka_ready || die "Kafka did not start in 120 s; see $DATA/kafka/kafka.log"
}

kafka_stop() { stop_pid "$DATA/kafka/kafka.pid" kafka; }

kafka_pidfile() { echo "$DATA/kafka/kafka.pid"; }

kafka_log() { echo "$DATA/kafka/kafka.log"; }

# --- Debezium on Kafka Connect ------------------------------------------------------

debezium_install() {
  command -v java >/dev/null || ensure_apt openjdk-17-jre-headless
  if [ -f "$CONNECT_LIBS/.complete" ]; then return 0; fi
  command -v mvn >/dev/null || ensure_apt maven
  log "fetching Kafka Connect $KAFKA_VERSION and Debezium $DEBEZIUM_VERSION from Maven Central"
  rm -rf "$CONNECT_LIBS"
  mvn -q -B -f "$here/debezium/pom.xml" -Dmaven.repo.local="$CACHE/m2" \
    dependency:copy-dependencies -DoutputDirectory="$CONNECT_LIBS" >&2
  touch "$CONNECT_LIBS/.complete"
}

debezium_ready() { port_open "$CONNECT_PORT" && grep -q 'Kafka Connect started' "$DATA/debezium/connect.log"; }

debezium_start() {
  [ -f "$CONNECT_LIBS/.complete" ] || die "Debezium is not installed; run: scripts/services.sh up debezium"
  if pid_alive "$DATA/debezium/connect.pid" && port_open "$CONNECT_PORT"; then log "debezium is already up"; return 0; fi
  port_open "$KAFKA_PORT" || die "Debezium needs Kafka; run: scripts/services.sh up kafka debezium"
  mkdir -p "$DATA/debezium"
  # The REST API on loopback only; JSON without embedded schemas; offsets in a file.
  cat >"$DATA/debezium/worker.properties" <<EOF
bootstrap.servers=127.0.0.1:$KAFKA_PORT
listeners=http://127.0.0.1:$CONNECT_PORT
key.converter=org.apache.kafka.connect.json.JsonConverter
value.converter=org.apache.kafka.connect.json.JsonConverter
key.converter.schemas.enable=false
value.converter.schemas.enable=false
offset.storage.file.filename=$DATA/debezium/offsets
offset.flush.interval.ms=1000
EOF
  : >"$DATA/debezium/connect.log"
  nohup java -Xms128m -Xmx512m -XX:+UseG1GC -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$here/debezium/log4j2.properties" -cp "$CONNECT_LIBS/*" \
    org.apache.kafka.connect.cli.ConnectStandalone "$DATA/debezium/worker.properties" \
    </dev/null >>"$DATA/debezium/connect.log" 2>&1 &
  echo $! >"$DATA/debezium/connect.pid"
  wait_until 120 debezium debezium_ready || die "Kafka Connect did not start in 120 s; see $DATA/debezium/connect.log"
}

# Stopping also drops the replication slots and publications the connectors made
# (named dbz_*): a slot outlives its connector and keeps every WAL segment from its
# position on, until the disk is full.
debezium_stop() {
  stop_pid "$DATA/debezium/connect.pid" debezium
  if postgres_ready; then
    "$PG_BIN/psql" -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -d cqrs >/dev/null 2>&1 <<'SQL' || true
SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
 WHERE slot_name LIKE 'dbz\_%' AND NOT active;
DO $$ DECLARE p record; BEGIN
  FOR p IN SELECT pubname FROM pg_publication WHERE pubname LIKE 'dbz\_%' LOOP
    EXECUTE format('DROP PUBLICATION %I', p.pubname);
  END LOOP;
END $$;
SQL
  fi
}

debezium_pidfile() { echo "$DATA/debezium/connect.pid"; }

debezium_log() { echo "$DATA/debezium/connect.log"; }

# --- MongoDB protocol (FerretDB) --------------------------------------------------

mongo_install() {
  if [ -x "$FERRETDB_BIN" ]; then return 0; fi
  command -v go >/dev/null || die "FerretDB is built with Go (1.24 or newer), which is not installed"
  log "building FerretDB $FERRETDB_VERSION with Go (first time only)"
  mkdir -p "$CACHE/bin"
  (cd "$here/ferretdb" && GOFLAGS=-mod=mod GOMODCACHE="$CACHE/go/mod" GOCACHE="$CACHE/go/build" \
    go build -trimpath -o "$FERRETDB_BIN.tmp" .) >&2
  mv "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
}

mongo_ready() { port_open "$MONGO_PORT"; }

mongo_start() {
  [ -x "$FERRETDB_BIN" ] || die "FerretDB is not built; run: scripts/services.sh up mongo"
  postgres_ready || die "FerretDB keeps its data in PostgreSQL, which is not up; run: scripts/services.sh up postgres mongo"
  if pid_alive "$DATA/mongo/ferretdb.pid" && mongo_ready; then log "mongo is already up"; return 0; fi
  mkdir -p "$DATA/mongo"
  # FerretDB v1 holds a backend connection per matched statement of an `update` command
  # until the command ends, so a pool smaller than (statements per command x concurrent
  # commands) deadlocks; 200 connections leave room for the tests and benches (the
  # adapter sends at most 64 statements per command to FerretDB: see cqrs-mongo).
  nohup "$FERRETDB_BIN" -listen "127.0.0.1:$MONGO_PORT" -handler postgresql \
    -postgresql-url "postgres://cqrs:cqrs@127.0.0.1:$PG_PORT/ferretdb?pool_max_conns=200" \
    >>"$DATA/mongo/ferretdb.log" 2>&1 &
  echo $! >"$DATA/mongo/ferretdb.pid"
  wait_until 60 mongo mongo_ready || die "FerretDB did not start; see $DATA/mongo/ferretdb.log"
}

mongo_stop() { stop_pid "$DATA/mongo/ferretdb.pid" mongo; }

mongo_pidfile() { echo "$DATA/mongo/ferretdb.pid"; }

mongo_log() { echo "$DATA/mongo/ferretdb.log"; }

# --- Toxiproxy (TCP fault proxy) ---------------------------------------------------

TOXIPROXY_BIN="$CACHE/bin/toxiproxy-server-v2.5.0"

toxiproxy_install() {
  if [ -x "$TOXIPROXY_BIN" ]; then return 0; fi
  command -v go >/dev/null || die "Toxiproxy is built with Go (1.24 or newer), which is not installed"
  log "building Toxiproxy v2.5.0 with Go (first time only)"
  mkdir -p "$CACHE/bin"
  (cd "$here/toxiproxy" && GOTOOLCHAIN=local GOFLAGS=-mod=readonly GOMODCACHE="$CACHE/go/mod" \
    GOCACHE="$CACHE/go/build" go build -trimpath -o "$TOXIPROXY_BIN.tmp" \
    github.com/Shopify/toxiproxy/v2/cmd/server) >&2
  mv "$TOXIPROXY_BIN.tmp" "$TOXIPROXY_BIN"
}

toxiproxy_ready() { port_open "$TOXIPROXY_PORT"; }

toxiproxy_start() {
  [ -x "$TOXIPROXY_BIN" ] || die "Toxiproxy is not built; run: scripts/services.sh up toxiproxy"
  if pid_alive "$DATA/toxiproxy/toxiproxy.pid" && toxiproxy_ready; then log "toxiproxy is already up"; return 0; fi
  mkdir -p "$DATA/toxiproxy"
  nohup "$TOXIPROXY_BIN" -host 127.0.0.1 -port "$TOXIPROXY_PORT" \
    >>"$DATA/toxiproxy/toxiproxy.log" 2>&1 &
  echo $! >"$DATA/toxiproxy/toxiproxy.pid"
  wait_until 30 toxiproxy toxiproxy_ready || die "Toxiproxy did not start; see $DATA/toxiproxy/toxiproxy.log"
}

toxiproxy_stop() { stop_pid "$DATA/toxiproxy/toxiproxy.pid" toxiproxy; }

toxiproxy_pidfile() { echo "$DATA/toxiproxy/toxiproxy.pid"; }

toxiproxy_log() { echo "$DATA/toxiproxy/toxiproxy.log"; }

# --- commands --------------------------------------------------------------------

# --- MariaDB (the `mysql` service) ----------------------------------------------

mysql_install() { ensure_apt mariadb-server mariadb-client; }

mysql_ready() {
  mariadb-admin --protocol=tcp -h 127.0.0.1 -P "$MYSQL_PORT" -u cqrs -pcqrs ping >/dev/null 2>&1
}

mysql_start() {
  command -v mariadbd >/dev/null || [ -x /usr/sbin/mariadbd ] \
    || die "MariaDB is not installed; run: scripts/services.sh up mysql"
  if mysql_ready; then log "mysql is already up"; return 0; fi
  local dir="$DATA/mysql"
  mkdir -p "$dir/data" "$dir/run"
  chown -R mysql:mysql "$dir"
  if [ ! -d "$dir/data/mysql" ]; then
    log "creating a MariaDB data directory in $dir/data"
    mariadb-install-db --user=mysql --datadir="$dir/data" --auth-root-authentication-method=socket \
      --skip-test-db >"$dir/install.log" 2>&1 || die "mariadb-install-db failed; see $dir/install.log"
  fi
  # The binlog in ROW format (for change-data-capture), a server id, room for the
  # tests' connections; fsync at every commit, as in production. Binlogs of more
  # than a day are purged (at each rotation, every 64 MiB): the tests' traffic
  # would otherwise fill the disk.
  /usr/sbin/mariadbd --user=mysql --datadir="$dir/data" --socket="$dir/run/mysqld.sock" \
    --pid-file="$dir/mysqld.pid" --port="$MYSQL_PORT" --bind-address=127.0.0.1 \
    --log-error="$dir/mysqld.log" --log-bin="$dir/data/binlog" --binlog-format=ROW \
    --binlog-expire-logs-seconds=86400 --max-binlog-size=64M \
    --server-id=1 --max-connections=500 --innodb-buffer-pool-size=256M \
    --innodb-flush-log-at-trx-commit=1 --character-set-server=utf8mb4 \
    --collation-server=utf8mb4_unicode_ci >/dev/null 2>&1 &
  wait_until 60 mysql mariadb-admin --socket="$dir/run/mysqld.sock" ping \
    || die "MariaDB did not start; see $dir/mysqld.log"
  mariadb --socket="$dir/run/mysqld.sock" -u root <<'SQL'
CREATE DATABASE IF NOT EXISTS cqrs;
CREATE USER IF NOT EXISTS 'cqrs'@'127.0.0.1' IDENTIFIED BY 'cqrs';
CREATE USER IF NOT EXISTS 'cqrs'@'localhost' IDENTIFIED BY 'cqrs';
GRANT ALL PRIVILEGES ON *.* TO 'cqrs'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'cqrs'@'localhost' WITH GRANT OPTION;
SQL
  wait_until 30 mysql mysql_ready || die "MariaDB does not answer on port $MYSQL_PORT"
}

mysql_stop() { stop_pid "$DATA/mysql/mysqld.pid" mysql; }

mysql_pidfile() { echo "$DATA/mysql/mysqld.pid"; }

mysql_log() { echo "$DATA/mysql/mysqld.log"; }

print_env() {
  cat <<EOF
export DATABASE_URL=postgres://cqrs:cqrs@127.0.0.1:$PG_PORT/cqrs
export MONGODB_URL=mongodb://127.0.0.1:$MONGO_PORT/
export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/
export KAFKA_BROKERS=127.0.0.1:$KAFKA_PORT
export KAFKA_FAULTY_LISTENER=127.0.0.1:$KAFKA_FAULTY_PORT
export KAFKA_PROXIED_BROKERS=127.0.0.1:$KAFKA_PROXIED_PORT
export CONNECT_URL=http://127.0.0.1:$CONNECT_PORT
export MYSQL_URL=mysql://cqrs:cqrs@127.0.0.1:$MYSQL_PORT/cqrs
export TOXIPROXY_URL=http://127.0.0.1:$TOXIPROXY_PORT
EOF
}

# The browser is installed, not run: the test starts chromedriver (which starts
# Chromium) on a port of its own and stops it.
browser_install() { ensure_apt chromium chromium-driver; }
browser_start() { command -v chromedriver >/dev/null || die "chromedriver is missing: scripts/services.sh up browser"; }
browser_stop() { :; }
browser_ready() { command -v chromedriver >/dev/null && command -v chromium >/dev/null; }
browser_log() { echo /dev/null; }
browser_pidfile() { echo /dev/null; }

where() {
  case $1 in
    browser) command -v chromedriver || echo "not installed" ;;
    postgres) echo "postgres://cqrs:cqrs@127.0.0.1:$PG_PORT/cqrs" ;;
    redis) echo "redis://127.0.0.1:$REDIS_PORT/" ;;
    kafka) echo "127.0.0.1:$KAFKA_PORT" ;;
    mongo) echo "mongodb://127.0.0.1:$MONGO_PORT/" ;;
    debezium) echo "http://127.0.0.1:$CONNECT_PORT" ;;
    mysql) echo "mysql://cqrs:cqrs@127.0.0.1:$MYSQL_PORT/cqrs" ;;
    toxiproxy) echo "http://127.0.0.1:$TOXIPROXY_PORT" ;;
  esac
}

cmd=${1:-}
[ -n "$cmd" ] || { sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
shift
services=("$@")
((${#services[@]})) || services=("${ALL[@]}")
for s in "${services[@]}"; do
  case $s in postgres | redis | kafka | mongo | debezium | mysql | browser | toxiproxy) ;; *) die "unknown service '$s' (postgres, redis, kafka, mongo, debezium, mysql, browser, toxiproxy)" ;; esac
done

reversed() { local i; for ((i = ${#services[@]} - 1; i >= 0; i--)); do echo "${services[i]}"; done; }

case $cmd in
  up)
    started=$SECONDS
    for s in "${services[@]}"; do "${s}_install"; done
    for s in "${services[@]}"; do "${s}_start"; done
    for s in "${services[@]}"; do log "$(printf '%-8s %s' "$s" "$(where "$s")")"; done
    log "ready in $((SECONDS - started)) s; for the tests: eval \"\$(scripts/services.sh env)\""
    ;;
  start) for s in "${services[@]}"; do "${s}_start"; done ;;
  down | stop) for s in $(reversed); do "${s}_stop"; done ;;
  restart)
    for s in $(reversed); do "${s}_stop"; done
    for s in "${services[@]}"; do "${s}_start"; done
    ;;
  status)
    rc=0
    for s in "${services[@]}"; do
      if "${s}_ready"; then echo "$s: up at $(where "$s")"; else echo "$s: down"; rc=1; fi
    done
    exit $rc
    ;;
  crash)
    for s in "${services[@]}"; do
      if [ "$s" = postgres ]; then
        # The postmaster, as `kill -9` would; its backends notice and exit, and the
        # next start recovers from the WAL.
        if [ -f "$PG_DATA/postmaster.pid" ] && kill -KILL "$(head -n 1 "$PG_DATA/postmaster.pid")" 2>/dev/null; then
          log "postgres killed (SIGKILL to the postmaster)"
        else
          log "postgres was not running"
        fi
        continue
      fi
      pidfile=$("${s}_pidfile")
      if pid_alive "$pidfile"; then
        kill -KILL "$(cat "$pidfile")"
        log "$s killed (SIGKILL)"
      else
        log "$s was not running"
      fi
    done
    ;;
  env) print_env ;;
  logs) for s in "${services[@]}"; do f=$("${s}_log"); echo "== $s: $f"; tail -n 20 "$f" 2>/dev/null || true; done ;;
  *) die "unknown command '$cmd' (up, down, start, stop, restart, crash, status, env, logs)" ;;
esac
