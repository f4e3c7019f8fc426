#!/usr/bin/env bash
# Ubuzima Sync — THE demo command: installs what is missing, builds, starts the server on its
# embedded SQLite store, and walks two assessor devices through offline capture, a concurrent
# edit of one field and sync, printing the converged result and the conflict kept for review.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/install-deps.sh
BUILD_DIR="$root/build" bash scripts/build.sh >/dev/null

server_bin="$root/build/server/ubuzima-server"
cli="$root/build/examples/ubuzima"
data="$root/demo-data"
rm -rf "$data"
mkdir -p "$data"
port="${UBUZIMA_DEMO_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')}"
url="http://127.0.0.1:$port"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ %s\n' "$*" | sed "s|$root/build/examples/||; s|--db $data/|--db |"; "$@"; }

step "Start the sync server (embedded SQLite store in demo-data/server)"
UBUZIMA_ADMIN_PASSWORD=demo-admin "$server_bin" --data "$data/server" --listen "127.0.0.1:$port" \
    > "$data/server.log" 2>&1 &
server_pid=$!
trap 'kill $server_pid 2>/dev/null || true; wait $server_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
    curl -sf "$url/v1/health" >/dev/null 2>&1 && break
    sleep 0.1
done
curl -sf "$url/v1/health"; echo

step "The admin creates two assessors for Gisenyi District Hospital and a coordinator"
admin_token=$(curl -sf "$url/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"username":"admin","password":"demo-admin","device_id":"demo-console"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
for u in alice:assessor bob:assessor coord:coordinator; do
    name=${u%%:*}; role=${u##*:}
    curl -sf "$url/v1/admin/users" -H 'Content-Type: application/json' -H "Authorization: Bearer $admin_token" \
        -d "{\"username\":\"$name\",\"password\":\"pass-$name\",\"role\":\"$role\",\"facilities\":[\"fac-gisenyi\"]}" \
        >/dev/null
    echo "created $name ($role)"
done

A=(--db "$data/alice.db")
B=(--db "$data/bob.db")

step "Both tablets are provisioned while they still have a link, and pull the reference data"
run "$cli" "${A[@]}" login "$url" alice pass-alice
run "$cli" "${B[@]}" login "$url" bob pass-bob
run "$cli" "${A[@]}" sync
run "$cli" "${B[@]}" sync
run "$cli" "${A[@]}" list facility

step "OFFLINE at Gisenyi: Alice records a needs assessment, findings and a need"
assessment=$("$cli" "${A[@]}" assess new fac-gisenyi 2026-11-20 alice)
echo "assessment $assessment"
run "$cli" "${A[@]}" assess finding "$assessment" item-amn-power observed_functional
run "$cli" "${A[@]}" assess finding "$assessment" item-eqp-bp observed_not_functional "cuff torn"
run "$cli" "${A[@]}" assess finding "$assessment" item-lab-hb not_available
need=$("$cli" "${A[@]}" need fac-gisenyi anaesthesiology high "Anaesthesia cover for night C-sections" \
    source_assessment_id="$assessment" trainees_expected=4)
echo "need $need"
run "$cli" "${A[@]}" assess submit "$assessment"

step "OFFLINE too: Bob records a skill-transfer session, attendance and patients served"
session=$("$cli" "${B[@]}" session fac-gisenyi dep-001 physiotherapy bedside_teaching 120 "Post-stroke mobilisation")
trainee=$("$cli" "${B[@]}" trainee fac-gisenyi Jeanne Example nurse GIS-0042)
run "$cli" "${B[@]}" attend "$session" "$trainee" present
run "$cli" "${B[@]}" tally dep-001 fac-gisenyi 2026-11-21 physiotherapy_session female 50_plus 6
run "$cli" "${A[@]}" status
run "$cli" "${B[@]}" status

step "A link appears (hotel Wi-Fi): both devices sync"
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
coord_token=$(curl -sf "$url/v1/auth/login" -H 'Content-Type: application/json' \
    -d '{"username":"coord","password":"pass-coord","device_id":"demo-console"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
curl -sf "$url/v1/conflicts?status=open" -H "Authorization: Bearer $coord_token" | python3 -m json.tool

a_state=$("$cli" "${A[@]}" list need)
b_state=$("$cli" "${B[@]}" list need)
if [ "$a_state" = "$b_state" ]; then
    step "Converged: both devices hold the same data."
else
    step "NOT converged"; exit 1
fi
