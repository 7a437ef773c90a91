#!/usr/bin/env bash
# Starts one MariaDB node of the native stack, read-only unless it is the primary:
#
#   start-node.sh SELF ROLE MARIADBD [OPTION...]
#
# SELF is the node's host:port (as the failover record names nodes), ROLE its configured role
# (primary | replica). With MYSQL_TOPOLOGY_FILE holding a failover record, only the node it names
# starts writable (setup-replication.sh, startup_read_only), and a read-only node with semi-sync
# on recovers from a crash as a replica (startup_rpl_role). The supervisor runs this on every
# start, so a node that restarts by itself gets the same answer as one started by `make up`.
set -euo pipefail
# shellcheck source=mysql/setup-replication.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup-replication.sh"

self=$1 role=$2
shift 2
read_only=$(startup_read_only "$self" "$role")
# Its semi-sync replica side, from its own option file (make up renders it from MYSQL_SEMI_SYNC).
semi_sync=OFF datadir=
for option in "$@"; do
  if [[ $option == --defaults-file=* ]]; then
    config=${option#--defaults-file=}
    if grep -qxE 'rpl_semi_sync_slave_enabled = ON' "$config"; then semi_sync=ON; fi
    datadir=$(sed -n 's/^datadir = //p' "$config")
  fi
done
rpl_role=$(startup_rpl_role "$read_only" "$semi_sync")
if [[ $rpl_role == SLAVE && -n $datadir ]]; then keep_binlog_tail "$self" "$datadir"; fi
exec "$@" --read-only="$read_only" --init-rpl-role="$rpl_role"
