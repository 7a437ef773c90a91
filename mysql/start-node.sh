#!/usr/bin/env bash
# Starts one MariaDB node of the native stack, read-only unless it is the primary:
#
#   start-node.sh SELF ROLE MARIADBD [OPTION...]
#
# SELF is the node's host:port (as the failover record names nodes), ROLE its configured role
# (primary | replica). With MYSQL_TOPOLOGY_FILE holding a failover record, only the node it names
# starts writable (setup-replication.sh, startup_read_only). The supervisor runs this on every
# start, so a node that restarts by itself gets the same answer as one started by `make up`.
set -euo pipefail
# shellcheck source=mysql/setup-replication.sh
source "$(dirname "${BASH_SOURCE[0]}")/setup-replication.sh"

self=$1 role=$2
shift 2
exec "$@" --read-only="$(startup_read_only "$self" "$role")"
