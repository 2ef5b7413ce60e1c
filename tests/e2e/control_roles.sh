#!/bin/bash
# Roles on the REST API (the product rule: everyone sees Migrate; only the
# migrate role or an administrator may start or cancel one), over HTTPS
# with a certificate ferryctl checks against its CA. No token is 401, a
# wrong token 401, a viewer may read but gets 403 with a clear message when
# it tries to migrate, a migrator migrates. Root on the unix socket is
# admin. Tokens come from a file or the environment, never argv, and never
# reach the log; the config that holds them must be mode 0600; every
# mutating call leaves one audit line (who, what, result).
. "$(dirname "$0")/cluster_lib.sh"
cluster_init "$1"
command -v openssl >/dev/null || { echo "SKIP: openssl missing"; exit 77; }

port_alloc PORT_API
VIEWER=viewer-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
MIGRATOR=migrator-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
# A CA and a server certificate for 127.0.0.1 (what an operator's PKI gives).
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj /CN=test-ca \
	-keyout "$WORK/ca.key" -out "$WORK/ca.crt" 2>/dev/null || die "cannot make a CA"
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=node-a \
	-keyout "$WORK/api.key" -out "$WORK/api.csr" 2>/dev/null || die "cannot make a CSR"
printf 'subjectAltName=IP:127.0.0.1\n' > "$WORK/san.ext"
openssl x509 -req -in "$WORK/api.csr" -CA "$WORK/ca.crt" -CAkey "$WORK/ca.key" -CAcreateserial -days 2 \
	-extfile "$WORK/san.ext" -out "$WORK/api.crt" 2>/dev/null || die "cannot sign"
chmod 600 "$WORK/api.key"
agent_config node-a "$PORT_A" node-b "$PORT_B"
cat >> "$WORK/node-a.yaml" <<YAML
api_listen: 127.0.0.1:$PORT_API
api_tls: {cert: $WORK/api.crt, key: $WORK/api.key}
tokens:
  - {name: ops-viewer, token: $VIEWER, role: viewer}
  - {name: ops-migrator, token: $MIGRATOR, role: migrator}
YAML
agent_config node-b "$PORT_B" node-a "$PORT_A"

# A config holding tokens that others may read is refused, naming the fix.
chmod 644 "$WORK/node-a.yaml"
out=$("$FERRYD" --config "$WORK/node-a.yaml" 2>&1) && die "ferryd accepted a world-readable config with tokens"
echo "$out" | grep -q "make it 0600" || die "mode message: $out"

agent_start node-a
agent_start node-b
vm_create node-a g1 128 "fill=32 profile=text dirty=5 wss=16"

printf '%s\n' "$VIEWER" > "$WORK/viewer.token"
printf '%s\n' "$MIGRATOR" > "$WORK/migrator.token"
chmod 600 "$WORK"/*.token
tcp() { "$FERRYCTL" --server "https://127.0.0.1:$PORT_API" --cacert "$WORK/ca.crt" "$@"; }
# The certificate is checked: without the CA, curl refuses the server.
out=$("$FERRYCTL" --server "https://127.0.0.1:$PORT_API" --token-file "$WORK/viewer.token" vm list 2>&1) &&
	die "ferryctl trusted a certificate it cannot check"
echo "$out" | grep -qi "certificate" || die "certificate message: $out"
# Plain HTTP on the HTTPS port does not work.
! curl -s -m 5 "http://127.0.0.1:$PORT_API/v1/whoami" >/dev/null 2>&1 || die "plain HTTP answered"
out=$(tcp get vmim 2>&1) && die "no token was accepted"
echo "$out" | grep -q "a bearer token is required" || die "401 message: $out"
out=$(tcp --token "$VIEWER" vm list 2>&1) && die "a token on the command line was accepted"
echo "$out" | grep -q -- "--token-file" || die "argv token message: $out"
printf 'not-a-valid-token-at-all\n' > "$WORK/bad.token"
out=$(tcp --token-file "$WORK/bad.token" get vmim 2>&1) && die "a bad token was accepted"
echo "$out" | grep -q "not valid" || die "bad-token message: $out"
tcp --token-file "$WORK/viewer.token" vm list | grep -q g1 || die "viewer cannot read"
FERRY_TOKEN=$VIEWER tcp vm list | grep -q g1 || die "viewer cannot read with FERRY_TOKEN"
# RFC 7235: the scheme is case-insensitive.
curl -sf -m 10 --cacert "$WORK/ca.crt" -H "Authorization: bearer $VIEWER" \
	"https://127.0.0.1:$PORT_API/v1/whoami" | grep -q viewer || die "a lowercase bearer scheme was refused"
out=$(tcp --token-file "$WORK/viewer.token" migrate g1 --node node-b 2>&1) && die "viewer started a migration"
echo "$out" | grep -q "role viewer may not do this: it needs the migrator role" || die "403 message: $out"
out=$(tcp --token-file "$WORK/viewer.token" vm delete g1 2>&1) && die "viewer deleted a VM"
out=$(tcp --token-file "$WORK/migrator.token" vm delete g1 2>&1) && die "migrator deleted a VM"
echo "$out" | grep -q "needs the admin role" || die "403 message for delete: $out"
tcp --token-file "$WORK/migrator.token" migrate g1 --node node-b --wait || die "migrator could not migrate"
guest_verify node-b g1
! grep -q -e "$VIEWER" -e "$MIGRATOR" "$WORK"/node-a.log || die "a token reached the log"
grep -q 'comp=audit event=api_call who=ops-migrator role=migrator method=POST path=/v1/migrations status=20' \
	"$WORK/node-a.log" || die "no audit line for the migration: $(grep comp=audit "$WORK/node-a.log")"
grep -q 'comp=audit event=api_call who=ops-viewer role=viewer method=DELETE path=/v1/vms/g1 status=403' \
	"$WORK/node-a.log" || die "no audit line for the refused delete"
log PASS
