#!/usr/bin/env bash
# Rebuilds one node from a consistent copy of the primary, then attaches it as a replica:
#
#   rebuild-node.sh HOST:PORT
#
# For a node that setup-replication.sh refused (a former primary whose GTID history diverged, or
# one that lost what it once wrote itself): its binary logs are reset, its databases replaced by
# a dump of the primary taken in one transaction with the primary's GTID position, and
# replication set up from that position. What only this node held is gone afterwards: the script
# first prints those GTIDs, and `mariadb-binlog` on a copy of its datadir shows them.
#
# Refuses the primary itself, and a node that takes writes. Environment: that of
# setup-replication.sh (MYSQL_TOPOLOGY_FILE names the primary after a failover).
set -euo pipefail

# The admin account every node has (root answers on a node's own socket only).
MYSQL_ADMIN_USER=${MYSQL_ADMIN_USER:-admin}
# shellcheck source=mysql/setup-replication.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup-replication.sh"

primary_dump() {
  MYSQL_PWD="$MYSQL_ADMIN_PASSWORD" mariadb-dump --no-defaults --protocol=TCP \
    -h "$MYSQL_PRIMARY_HOST" -P "$MYSQL_PRIMARY_PORT" -u "$MYSQL_ADMIN_USER" "$@"
}

main_rebuild() {
  local node=${1:-} why host port
  [[ -n $node ]] || die "usage: rebuild-node.sh HOST:PORT"
  check_required_settings
  load_topology
  grep -qxF "$node" <<<"$REPLICA_LIST" || die "$node is not a replica of this topology (primary: $PRIMARY)"
  host=${node%:*} port=${node##*:}
  wait_for_mysql "$host" "$port"
  [[ $(sql "$host" "$port" 'SELECT @@read_only') == 1 ]] || die "$node takes writes: refusing to overwrite it"
  MYSQL_PRIMARY_HOST=${PRIMARY%:*} MYSQL_PRIMARY_PORT=${PRIMARY##*:}
  why=$(diverged "$host" "$port")
  log "rebuilding $node from $PRIMARY${why:+ (it was refused: $why)}"
  # Its own binlog goes: what it alone held would otherwise stay in its GTID position.
  sql "$host" "$port" 'STOP REPLICA; RESET REPLICA ALL; RESET MASTER'
  # Loaded without writing a binlog of its own: the primary's accounts and grants, then its schema
  # (dropped and recreated) in one transaction with the primary's GTID position, which the dump
  # sets as gtid_slave_pos.
  {
    printf 'SET SESSION sql_log_bin = 0;\nUSE mysql;\n'
    primary_dump --flush-privileges mysql global_priv db tables_priv columns_priv procs_priv \
      proxies_priv roles_mapping
    primary_dump --single-transaction --gtid --master-data=1 --add-drop-database --routines \
      --events --triggers --databases "$MYSQL_DATABASE"
  } | MYSQL_PWD="$MYSQL_ADMIN_PASSWORD" mariadb --no-defaults --protocol=TCP -h "$host" -P "$port" -u "$MYSQL_ADMIN_USER"
  log "$node loaded at GTID $(sql "$host" "$port" 'SELECT @@gtid_slave_pos')"
  ensure_replica_attached "$host" "$port"
  ensure_semi_sync "$host" "$port" replica
  log "$node rebuilt: a replica of $PRIMARY"
}

main_rebuild "$@"
