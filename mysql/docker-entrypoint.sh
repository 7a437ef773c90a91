#!/usr/bin/env bash
# Entrypoint of the project's MariaDB image.
#
#   docker-entrypoint.sh mariadbd [options]   write the instance config, initialise an empty
#                                             datadir once, then exec the server
#   docker-entrypoint.sh healthcheck          exit 0 once the server answers a query
#   docker-entrypoint.sh COMMAND ...          run COMMAND (setup-replication.sh, repl-status.sh)
#
# Environment: MYSQL_ROLE (primary | replica), MYSQL_SELF_ADDRESS (host:port, as the failover
# record in MYSQL_TOPOLOGY_FILE names nodes), MYSQL_SERVER_ID (overrides the role's default),
# MYSQL_SERVER_ID_OFFSET (Kubernetes: server_id = offset + the StatefulSet ordinal at the end of
# the host name), MYSQL_ADMIN_USER (default admin) and MYSQL_ADMIN_PASSWORD (needed on the first start only: the
# admin account, reachable over the network; root answers on the container's socket only),
# MYSQL_SEMI_SYNC (on | off) and MYSQL_SEMI_SYNC_TIMEOUT_MS (see .env.example).
set -euo pipefail
# startup_read_only and the failover record's reader (its main runs only when executed).
# shellcheck source=mysql/setup-replication.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup-replication.sh"

CONFIG_DIR=/etc/mysql/project
INSTANCE_CONFIG=/run/mysqld/instance.cnf
DATADIR=/var/lib/mysql
SOCKET=/run/mysqld/mysqld.sock
INIT_SOCKET=/run/mysqld/init.sock

log() { printf '[mariadb-entrypoint] %s\n' "$*"; }
die() { printf '[mariadb-entrypoint] error: %s\n' "$*" >&2; exit 1; }

# fill_template FILE NAME=VALUE...: FILE with each ${NAME} replaced by its VALUE; a name left
# without one is an error (as stack/templates.py does natively).
fill_template() {
  local file=$1 text pair name
  text=$(<"$file")
  shift
  for pair in "$@"; do
    name=${pair%%=*}
    text=${text//"\${$name}"/"${pair#*=}"}
  done
  if [[ $text =~ \$\{([A-Z0-9_]+)\} ]]; then die "$file: no value for \${${BASH_REMATCH[1]}}"; fi
  printf '%s\n' "$text"
}

# The instance's option file from the template that stack/mysql.py renders natively
# (mysql/conf/instance.cnf.template), with this container's paths and port.
write_instance_config() {
  local role=${MYSQL_ROLE:-primary} lines read_only semi_sync=OFF
  [[ $role == primary || $role == replica ]] || die "MYSQL_ROLE must be primary or replica, not '$role'"
  if [[ ${MYSQL_SEMI_SYNC:-on} == on ]]; then semi_sync=ON; fi
  # Writable only as the primary: the configured one, or the one a failover recorded.
  read_only=$(startup_read_only "${MYSQL_SELF_ADDRESS:-}" "$role")
  lines="read_only = $read_only"$'\n'"init_rpl_role = $(startup_rpl_role "$read_only" "$semi_sync")"
  if [[ -n ${MYSQL_SERVER_ID:-} ]]; then lines+=$'\n'"server_id = $MYSQL_SERVER_ID"; fi
  if [[ -n ${MYSQL_SERVER_ID_OFFSET:-} ]]; then
    [[ $(hostname) =~ -([0-9]+)$ ]] || die "MYSQL_SERVER_ID_OFFSET needs a host name ending in -N"
    lines+=$'\n'"server_id = $((MYSQL_SERVER_ID_OFFSET + BASH_REMATCH[1]))"
  fi
  fill_template "$CONFIG_DIR/instance.cnf.template" \
    "CONFIG_DIR=$CONFIG_DIR" "ROLE=$role" "DATADIR=$DATADIR" "SOCKET=$SOCKET" \
    "PID_FILE=/run/mysqld/mysqld.pid" "PORT=3306" "BIND_ADDRESS=0.0.0.0" \
    "SEMI_SYNC=$semi_sync" "SEMI_SYNC_TIMEOUT_MS=$((${MYSQL_SEMI_SYNC_TIMEOUT_MS:-1000}))" \
    "INSTANCE_LINES=$lines" >"$INSTANCE_CONFIG"
}

# sql_string VALUE: VALUE as a single-quoted SQL string literal.
sql_string() {
  local escaped=${1//\\/\\\\}
  printf "'%s'" "${escaped//\'/\'\'}"
}

# local_sql SOCKET STATEMENT: as the OS user's own account (unix_socket authentication).
local_sql() {
  mariadb --no-defaults --protocol=SOCKET -S "$1" -u "$(id -un)" --batch --skip-column-names -e "$2"
}

wait_for_socket() {
  local socket=$1 deadline=$((SECONDS + 60))
  until local_sql "$socket" 'SELECT 1' >/dev/null 2>&1; do
    ((SECONDS < deadline)) || die "the server did not answer on $socket"
    sleep 0.2
  done
}

# First start only: system tables, then the admin account (MYSQL_ADMIN_USER@'%', never root)
# with the password from the environment, kept
# out of the binlog so that no node starts with a transaction of its own (GTID strict mode).
ensure_datadir() {
  if [[ -d $DATADIR/mysql ]]; then
    log "datadir exists, kept"
    return
  fi
  [[ -n ${MYSQL_ADMIN_PASSWORD:-} ]] || die "MYSQL_ADMIN_PASSWORD is not set (needed to initialise the datadir)"
  log "initialising the datadir"
  mariadb-install-db --defaults-file="$INSTANCE_CONFIG" --auth-root-authentication-method=socket \
    --auth-root-socket-user="$(id -un)" --skip-test-db >/dev/null
  mariadbd --defaults-file="$INSTANCE_CONFIG" --skip-networking --socket="$INIT_SOCKET" &
  local init_pid=$!
  wait_for_socket "$INIT_SOCKET"
  local_sql "$INIT_SOCKET" "SET SESSION sql_log_bin = 0;
    CREATE USER IF NOT EXISTS $(sql_string "${MYSQL_ADMIN_USER:-admin}")@'%' IDENTIFIED BY $(sql_string "$MYSQL_ADMIN_PASSWORD");
    GRANT ALL PRIVILEGES ON *.* TO $(sql_string "${MYSQL_ADMIN_USER:-admin}")@'%' WITH GRANT OPTION;"
  mariadb-admin --no-defaults -S "$INIT_SOCKET" -u "$(id -un)" shutdown
  wait "$init_pid"
  log "datadir ready (admin account ${MYSQL_ADMIN_USER:-admin}@'%')"
}

main() {
  case ${1:-} in
    healthcheck)
      local_sql "$SOCKET" 'SELECT 1' >/dev/null
      ;;
    mariadbd)
      shift
      write_instance_config
      ensure_datadir
      exec mariadbd --defaults-file="$INSTANCE_CONFIG" "$@"
      ;;
    *)
      exec "$@"
      ;;
  esac
}

main "$@"
