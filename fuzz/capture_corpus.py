#!/usr/bin/env python3
# Ubuzima Sync — MIT licence.
# Regenerates the seed corpora from real exchanges with a running ubuzima-server on 127.0.0.1.
"""usage: capture_corpus.py SERVER_BINARY

Starts the server in a temp dir, logs in, and records real /v1/sync requests and responses:
  fuzz_sync_request/    request bodies (as the client sends them)
  fuzz_server_request/  '0'/'1' + request body (assessor/coordinator), '5' + structured requests
  fuzz_client_response/ response bodies; the batch id is replaced by "@batch@" (the fuzzer puts
                        the id of the batch its client sent there)
Edge cases that are not captured live in the corpus as hand-written files (edge-*)."""
import json, os, subprocess, sys, tempfile, time, urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
PORT = 18000 + os.getpid() % 1000
BASE = f"http://127.0.0.1:{PORT}"
NODE = "0123456789abcdef"


def post(path, body, token=None):
    data = body if isinstance(body, bytes) else json.dumps(body, separators=(",", ":")).encode()
    req = urllib.request.Request(BASE + path, data=data, method="POST")
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def hlc(ms, counter=0):
    return f"{(ms << 16) | counter:016x}"


def write(target, name, data):
    with open(os.path.join(HERE, "corpus", target, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def main():
    tmp = tempfile.mkdtemp(prefix="ubuzima-capture-")
    env = dict(os.environ, UBUZIMA_ADMIN_PASSWORD="admin-pw")
    server = subprocess.Popen([sys.argv[1], "--data", tmp, "--listen", f"127.0.0.1:{PORT}",
                               "--pbkdf2-iterations", "1000"], env=env)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(BASE + "/v1/health", timeout=1)
                break
            except OSError:
                time.sleep(0.1)
        login = lambda u, p: json.loads(post("/v1/auth/login", {"username": u, "password": p, "device_id": NODE})[1])["access_token"]
        admin = login("admin", "admin-pw")
        for name, role, fac in [("alice", "assessor", ["fac-gisenyi"]), ("coord", "coordinator", [])]:
            post("/v1/admin/users", {"username": name, "password": "pw-" + name, "role": role, "facilities": fac}, admin)
        alice, coord = login("alice", "pw-alice"), login("coord", "pw-coord")
        now = int(time.time() * 1000)
        need = {"facility_id": "fac-gisenyi", "need_type": "skills_training", "title": "Anaesthesia training",
                "description": "Staff need training", "priority": "high", "status": "identified"}

        def sync(name, token, changes=None, cursor=None, limit=2, batch="b-" + str(now), who="0"):
            req = {"protocol": 1, "schema_version": 1, "node": NODE, "clock": hlc(now), "cursor": cursor, "limit": limit}
            if changes is not None:
                req["batch"] = {"id": batch, "changes": changes}
            body = json.dumps(req, separators=(",", ":"))
            status, resp = post("/v1/sync", body.encode(), token)
            if not name:
                return json.loads(resp)
            write("fuzz_sync_request", name, body)
            write("fuzz_server_request", name, who + body)
            if status == 200:
                write("fuzz_client_response", name, resp.decode().replace(f"\"{batch}\"", "\"@batch@\""))
            return json.loads(resp)

        v = lambda i, ms=now: f"{hlc(ms, i)}@{NODE}"
        first = sync("pull-first-page", alice, limit=3)
        sync("pull-next-page", alice, cursor=first["cursor"], limit=3)
        sync("push-new-need", alice, [{"t": "need", "id": "need-0", "v": v(1), "f": need}], batch="capture-batch-1")
        sync("push-update-with-base", alice, [{"t": "need", "id": "need-0", "v": v(2), "f": {"priority": "low"},
                                               "b": {"priority": v(1)}}], batch="capture-batch-2")
        sync("push-rejections", alice, [
            {"t": "need", "id": "need-1", "v": v(3), "f": dict(need, facility_id="fac-butaro")},
            {"t": "facility", "id": "fac-gisenyi", "v": v(4), "f": {"name": "x"}},
            {"t": "need", "id": "need-2", "v": v(5), "f": dict(need, colour="red")},
            {"t": "need", "id": "need-3", "v": v(6, now + 3600_000), "f": need},
            {"t": "need", "id": "need-0", "v": v(7), "f": {"_deleted": True}}], batch="capture-batch-3")
        # A write made without knowledge of need-0's current priority: a concurrent conflict.
        sync("push-conflict", coord, [{"t": "need", "id": "need-0", "v": f"{hlc(now + 1, 9)}@00000000000000ff",
                                        "f": {"priority": "critical", "_deleted": False},
                                        "b": {"priority": None}}], batch="capture-batch-4", who="1")
        # The tail of the feed: the need rows written above, as another device pulls them.
        tail = str(int(sync(None, coord, limit=5000)["cursor"]) - 4)
        sync("pull-tail-coordinator", coord, cursor=tail, limit=50, who="1")
        write("fuzz_server_request", "structured-conflicts",
              "5GET\n/v1/conflicts?status=all\nauthorization: Bearer @token@\n\n")
        write("fuzz_server_request", "structured-login",
              '5POST\n/v1/auth/login\ncontent-type: application/json\n\n{"username":"coord","password":"pw-coord","device_id":"' + NODE + '"}')
        write("fuzz_server_request", "structured-resolve",
              '5POST\n/v1/conflicts/1/resolve\nauthorization: Bearer @token@\n\n{"value":"high"}')
    finally:
        server.terminate()
        server.wait()
        subprocess.run(["rm", "-rf", tmp])


if __name__ == "__main__":
    main()
