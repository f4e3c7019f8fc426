#!/usr/bin/env bash
# Ubuzima Sync — THE demo command: installs what is missing, builds, makes a certificate
# authority and a server certificate, starts the server over HTTPS on its embedded SQLite store,
# and walks two devices through offline capture, a concurrent edit of one field and sync, then
# the security an operator sees: the audit log verified, a lost tablet revoked.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "Installing what is missing and building (a few minutes the first time)"
bash scripts/install-deps.sh
BUILD_DIR="$root/build" bash scripts/build.sh >/dev/null

server_bin="$root/build/server/ubuzima-server"
cli="$root/build/examples/ubuzima"
data="$root/demo-data"
rm -rf "$data"
mkdir -p "$data"
port="${UBUZIMA_DEMO_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
url="https://localhost:$port"

run() { printf '$ %s\n' "$*" | sed "s|$root/build/examples/||; s|$root/build/server/||; s|$data/||g"; "$@"; }

step "A certificate authority and a server certificate for localhost (what an operator installs)"
tls="$data/tls"
mkdir -p "$tls"
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 7 \
    -subj "/O=Ubuzima demo/CN=Ubuzima demo CA" -keyout "$tls/ca.key" -out "$tls/ca.crt" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/O=Ubuzima demo/CN=localhost" \
    -keyout "$tls/server.key" -out "$tls/server.csr" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=critical,CA:FALSE\n' \
    >"$tls/server.ext"
openssl x509 -req -in "$tls/server.csr" -CA "$tls/ca.crt" -CAkey "$tls/ca.key" -CAcreateserial -days 7 \
    -extfile "$tls/server.ext" -out "$tls/server.crt" 2>/dev/null
chmod 600 "$tls/server.key" "$tls/ca.key"
pin=$(openssl x509 -in "$tls/server.crt" -pubkey -noout | openssl pkey -pubin -outform der |
      openssl dgst -sha256 -binary | openssl enc -base64)
echo "CA: demo-data/tls/ca.crt; server key pin: sha256//$pin"

step "Start the sync server over HTTPS (Beast listener, embedded SQLite store in demo-data/server)"
UBUZIMA_ADMIN_PASSWORD=demo-admin-2026 "$server_bin" --data "$data/server" --listen "127.0.0.1:$port" \
    --listener beast --tls-cert "$tls/server.crt" --tls-key "$tls/server.key" > "$data/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true' EXIT
api() { curl -sf --cacert "$tls/ca.crt" "$@"; }
for _ in $(seq 1 100); do
    api "$url/v1/health" >/dev/null 2>&1 && break
    sleep 0.1
done
head -2 "$data/server.log"
api "$url/v1/health"; echo
if curl -s -o /dev/null "http://localhost:$port/v1/health"; then echo "plain http answered?!"; exit 1; fi
echo "plain http:// on the same port gets no answer: it speaks TLS only"

step "The admin creates an assessor and a focal point for Gisenyi District Hospital, and a coordinator"
admin_token=$(api "$url/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"username":"admin","password":"demo-admin-2026","device_id":"demo-admin-console"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for u in alice:assessor bob:focal_point coord:coordinator; do
    name=${u%%:*}; role=${u##*:}
    api "$url/v1/admin/users" -H 'Content-Type: application/json' -H "Authorization: Bearer $admin_token" \
        -d "{\"username\":\"$name\",\"password\":\"gisenyi-$name-2026\",\"role\":\"$role\",\"facilities\":[\"fac-gisenyi\"]}" \
        >/dev/null
    echo "created $name ($role)"
done
echo "a weak password is refused:"
api "$url/v1/admin/users" -H 'Content-Type: application/json' -H "Authorization: Bearer $admin_token" \
    -d '{"username":"eve","password":"password123","role":"assessor","facilities":["fac-gisenyi"]}' ||
    curl -s --cacert "$tls/ca.crt" "$url/v1/admin/users" -H 'Content-Type: application/json' \
        -H "Authorization: Bearer $admin_token" \
        -d '{"username":"eve","password":"password123","role":"assessor","facilities":["fac-gisenyi"]}'
echo

# Each device trusts the demo CA and pins the server's key (the app ships both).
A=(--db "$data/alice.db" --ca-file "$tls/ca.crt" --pin "sha256//$pin")
B=(--db "$data/bob.db" --ca-file "$tls/ca.crt" --pin "sha256//$pin")

step "Both tablets are provisioned while they still have a link (the password is typed, or UBUZIMA_PASSWORD)"
UBUZIMA_PASSWORD=gisenyi-alice-2026 run "$cli" "${A[@]}" login "$url" alice
UBUZIMA_PASSWORD=gisenyi-bob-2026 run "$cli" "${B[@]}" login "$url" bob
run "$cli" "${A[@]}" sync
run "$cli" "${B[@]}" sync
run "$cli" "${A[@]}" list facility

step "OFFLINE at Gisenyi: Alice records a needs assessment, findings and a need"
assessment=$("$cli" "${A[@]}" assess new fac-gisenyi 2026-11-20)
echo "assessment $assessment (lead assessor: Alice's user id, filled in from her login)"
run "$cli" "${A[@]}" assess finding "$assessment" item-amn-power observed_functional
run "$cli" "${A[@]}" assess finding "$assessment" item-eqp-bp observed_not_functional "cuff torn"
run "$cli" "${A[@]}" assess finding "$assessment" item-lab-hb not_available
need=$("$cli" "${A[@]}" need fac-gisenyi anaesthesiology high "Anaesthesia cover for night C-sections" \
    source_assessment_id="$assessment" trainees_expected=4)
echo "need $need"
run "$cli" "${A[@]}" assess submit "$assessment"

step "OFFLINE too: Bob, the focal point, records a skill-transfer session, attendance and patients served"
session=$("$cli" "${B[@]}" session fac-gisenyi dep-001 physiotherapy bedside_teaching 120 "Post-stroke mobilisation")
trainee=$("$cli" "${B[@]}" trainee fac-gisenyi Jeanne Example nurse GIS-0042)
run "$cli" "${B[@]}" attend "$session" "$trainee" present
run "$cli" "${B[@]}" tally dep-001 fac-gisenyi 2026-11-21 physiotherapy_session female 50_plus 6
run "$cli" "${A[@]}" status
run "$cli" "${B[@]}" status

step "A link appears (hotel Wi-Fi): both devices sync over HTTPS"
run "$cli" "${A[@]}" sync
run "$cli" "${B[@]}" sync
run "$cli" "${A[@]}" sync
run "$cli" "${B[@]}" list need
run "$cli" "${A[@]}" list skill_transfer_session

step "The submitted assessment is sealed: Bob cannot change it, even offline"
run "$cli" "${B[@]}" set needs_assessment "$assessment" summary="edited later" || true

step "OFFLINE again: both change the priority of the same need"
run "$cli" "${A[@]}" set need "$need" priority=critical
sleep 0.05
run "$cli" "${B[@]}" set need "$need" priority=medium

step "Sync: the later write wins on every device; the other is kept, not lost"
run "$cli" "${A[@]}" sync
run "$cli" "${B[@]}" sync
run "$cli" "${A[@]}" sync
echo "--- Alice's tablet"; "$cli" "${A[@]}" list need
echo "--- Bob's tablet";   "$cli" "${B[@]}" list need
echo "--- Alice's journal (her write that lost the concurrent edit)"
"$cli" "${A[@]}" conflicts

step "The coordinator sees the conflict kept on the server for review"
coord_token=$(api "$url/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"username":"coord","password":"gisenyi-coord-2026","device_id":"demo-coord-console"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
api "$url/v1/conflicts?status=open" -H "Authorization: Bearer $coord_token" | python3 -m json.tool

step "The coordinator's indicators, computed on the server from what the tablets synced"
printf '$ curl -H "Authorization: Bearer <coordinator>" %s/v1/indicators/needs\n' "$url"
api "$url/v1/indicators/needs" -H "Authorization: Bearer $coord_token" | python3 -c '
import json, sys
for f in json.load(sys.stdin)["facilities"]:
    print("%s: %d needs (%d matched, %d open and unmatched), by priority %s" % (
        f["facility_id"], f["needs"], f["matched"], f["unmatched_open"], f["by_priority"]))'
printf '$ curl -H "Authorization: Bearer <coordinator>" %s/v1/indicators/services\n' "$url"
api "$url/v1/indicators/services" -H "Authorization: Bearer $coord_token" | python3 -c '
import json, sys
for r in json.load(sys.stdin)["rows"]:
    print("%(month)s %(facility_id)s %(service_type)s %(sex)s %(age_band)s: %(patients)d patients" % r)'

a_state=$("$cli" "${A[@]}" list need)
b_state=$("$cli" "${B[@]}" list need)
if [ "$a_state" = "$b_state" ]; then
    step "Converged: both devices hold the same data."
else
    step "NOT converged"; exit 1
fi

step "The operator: devices, and the audit log (who did what; its head is kept off the machine)"
run "$server_bin" device list --data "$data/server"
printf '$ ubuzima-server audit head --data server > audit.head\n'
"$server_bin" audit head --data "$data/server" > "$data/audit.head"
cat "$data/audit.head"
run "$server_bin" audit verify --data "$data/server" --head-file "$data/audit.head"

step "Bob's tablet is lost: the admin revokes it, and its next sync is refused at once"
bob_device=$("$cli" "${B[@]}" status | sed -n 's/^device \([0-9a-f]*\):.*/\1/p')
api -X POST "$url/v1/admin/devices/$bob_device/revoke" -H "Authorization: Bearer $admin_token"; echo
run "$cli" "${B[@]}" sync || true
run "$cli" "${A[@]}" sync

step "Operations: a backup while the server runs, readiness for a load balancer, and its metrics"
run "$server_bin" backup --data "$data/server" --to "$data/backup-$(date -u +%Y%m%dT%H%M%SZ).db"
api -o /dev/null -w 'GET /v1/health/ready: %{http_code}\n' "$url/v1/health/ready"
printf '$ curl -H "Authorization: Bearer <admin>" %s/metrics | grep ...\n' "$url"
api "$url/metrics" -H "Authorization: Bearer $admin_token" |
    grep -E '^ubuzima_(sync_rows_pushed_total|sync_conflicts_total|feed_head_seq|devices_active|db_pool_size)' || true
