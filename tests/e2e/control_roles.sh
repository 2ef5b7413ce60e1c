#!/bin/bash
# Roles on the REST API (the product rule: everyone sees Migrate; only the migrate
# role or an administrator may start or cancel one). Over TCP: no token is
# 401, a wrong token 401, a viewer may read but gets 403 with a clear
# message when it tries to migrate, a migrator migrates. Root on the unix
# socket is admin. Tokens never reach the log.
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"

port_alloc PORT_API
VIEWER=viewer-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
MIGRATOR=migrator-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
agent_config node-a "$PORT_A" node-b "$PORT_B"
cat >> "$WORK/node-a.yaml" <<YAML
api_listen: 127.0.0.1:$PORT_API
tokens:
  - {name: ops-viewer, token: $VIEWER, role: viewer}
  - {name: ops-migrator, token: $MIGRATOR, role: migrator}
YAML
agent_config node-b "$PORT_B" node-a "$PORT_A"
agent_start node-a
agent_start node-b
vm_create node-a g1 128 "fill=32 profile=text dirty=5 wss=16"

tcp() { "$FERRYCTL" --server "http://127.0.0.1:$PORT_API" "$@"; }
out=$(tcp get vmim 2>&1) && die "no token was accepted"
echo "$out" | grep -q "a bearer token is required" || die "401 message: $out"
out=$(tcp --token not-a-valid-token-at-all get vmim 2>&1) && die "a bad token was accepted"
echo "$out" | grep -q "not valid" || die "bad-token message: $out"
tcp --token "$VIEWER" vm list | grep -q g1 || die "viewer cannot read"
out=$(tcp --token "$VIEWER" migrate g1 --node node-b 2>&1) && die "viewer started a migration"
echo "$out" | grep -q "role viewer may not do this: it needs the migrator role" || die "403 message: $out"
out=$(tcp --token "$VIEWER" vm delete g1 2>&1) && die "viewer deleted a VM"
out=$(tcp --token "$MIGRATOR" vm delete g1 2>&1) && die "migrator deleted a VM"
echo "$out" | grep -q "needs the admin role" || die "403 message for delete: $out"
tcp --token "$MIGRATOR" migrate g1 --node node-b --wait || die "migrator could not migrate"
guest_verify node-b g1
! grep -q -e "$VIEWER" -e "$MIGRATOR" "$WORK"/node-a.log || die "a token reached the log"
log PASS
