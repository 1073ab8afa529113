#!/usr/bin/env bash
# Atalaia's DAGs, unchanged, on Airflow's CeleryExecutor with two workers, on this machine.
#
#   docker/celery-local.sh            (or: make celery-local)
#
# Starts, on loopback, the scheduler, the dag-processor, the api-server and two Celery
# workers (each in its own UTS namespace, so each reports its own hostname, as two machines
# would; one task at a time each). PostgreSQL holds Airflow's metadata and Atalaia's store,
# Redis is the broker. It writes a monitor of 1,000 hosts scored in partitions of 250 (four
# mapped tasks a run), ingests and trains it with the atalaia command, unpauses its score
# DAG, whose catchup then runs the two days since the baseline one after the other, and
# checks:
#   1. the first day's partitions ran on both workers;
#   2. the store holds exactly the scores and events of a single-process run
#      (`atalaia score` on a second store);
#   3. the second day survives one worker killed with SIGKILL (every process of it, as if its
#      machine died) while it scores a partition:
#      Airflow retries the partition on the other worker, and the store again equals the
#      single-process run's, with no row duplicated.
# Each check prints PASS or FAIL; the exit status is 1 if any failed. Everything started
# here is stopped on exit. Needs `pip install -e ".[celery]"`, PostgreSQL and Redis.
#
# Settings (environment):
#   CELERY_LOCAL_POSTGRES  server URL, default postgresql+psycopg://postgres@127.0.0.1:5432
#   CELERY_LOCAL_DATABASES prefix of the three databases it (re)creates, default atalaia_celery
#                          (_meta: Airflow's; _store: the store; _reference: the single process)
#   CELERY_LOCAL_BROKER    default redis://127.0.0.1:6379/7 (its database is emptied first)
#   CELERY_LOCAL_PORT      first of the ports used: api-server, then the workers' log servers
#                          at +11 and +12; default 35000
#   CELERY_LOCAL_ENTITIES  hosts of the monitor, default 1000
#   CELERY_LOCAL_KILL      0 to skip check 3 (it waits for Airflow's 2-4 minute retry delay)
#   CELERY_LOCAL_KEEP      1 to keep the work folder (logs, data); it is kept after a failure
#   PYTHON                 default .venv/bin/python
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
cd "$REPO"
PYTHON=${PYTHON:-.venv/bin/python}
POSTGRES=${CELERY_LOCAL_POSTGRES:-postgresql+psycopg://postgres@127.0.0.1:5432}
DATABASES=${CELERY_LOCAL_DATABASES:-atalaia_celery}
BROKER=${CELERY_LOCAL_BROKER:-redis://127.0.0.1:6379/7}
PORT=${CELERY_LOCAL_PORT:-35000}
ENTITIES=${CELERY_LOCAL_ENTITIES:-1000}
KILL=${CELERY_LOCAL_KILL:-1}
WORK=$(mktemp -d /tmp/atalaia-celery.XXXXXX)
DAG=atalaia__fleet__score
CHECK=("$PYTHON" docker/celery_check.py)
BEGAN=$SECONDS
PIDS=()
FAILED=0

say() { printf '[%4ds] %s\n' $((SECONDS - BEGAN)) "$*"; }
result() { # result NAME STATUS DETAIL
    if [ "$2" -eq 0 ]; then say "PASS $1: $3"; else say "FAIL $1: $3"; FAILED=1; fi
}

stop_all() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM -- "-$pid" 2>/dev/null || true; done
    for _ in $(seq 20); do
        local alive=0
        for pid in "${PIDS[@]}"; do kill -0 -- "-$pid" 2>/dev/null && alive=1; done
        [ "$alive" -eq 0 ] && break
        sleep 1
    done
    # The whole session: Airflow runs each task in a process group of its own.
    for pid in "${PIDS[@]}"; do pkill -KILL -s "$pid" 2>/dev/null || true; done
    if [ "${CELERY_LOCAL_KEEP:-0}" = 1 ] || [ "$FAILED" -ne 0 ]; then
        echo "kept $WORK (logs/ has every process's output)"
    else
        rm -rf "$WORK"
    fi
}
trap stop_all EXIT
trap 'FAILED=1; say "FAIL: \`$BASH_COMMAND\` exited with status $?"' ERR
trap 'exit 130' INT TERM

# start NAME COMMAND...: in a session of its own, so that it and its children stop together.
start() {
    local name=$1
    shift
    setsid "$@" >"$WORK/logs/$name.log" 2>&1 &
    PIDS+=("$!")
    eval "PID_${name//-/_}=$!"
}

# A worker in its own UTS namespace with its own hostname, like a second machine.
start_worker() {
    local name=$1 log_port=$2 as_root=()
    [ "$(id -u)" -eq 0 ] || as_root=(--map-root-user)
    AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=$log_port start "$name" \
        unshare --uts "${as_root[@]}" sh -c \
        'hostname "$1" && shift && exec "$@"' sh "$name" \
        "$PYTHON" -m airflow celery worker --celery-hostname "$name@%h" --concurrency 1
}

export PYTHONPATH=$REPO
export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1
export AIRFLOW_HOME=$WORK/airflow
export AIRFLOW__CORE__EXECUTOR=CeleryExecutor
export AIRFLOW__CORE__DAGS_FOLDER=$REPO/dags
export AIRFLOW__CORE__LOAD_EXAMPLES=False
export AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION=True
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=$POSTGRES/${DATABASES}_meta
# Airflow's async engine through psycopg 3 as well (it would default to asyncpg).
export AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=${POSTGRES/postgresql+psycopg:/postgresql+psycopg_async:}/${DATABASES}_meta
export AIRFLOW__CELERY__BROKER_URL=$BROKER
export AIRFLOW__CELERY__RESULT_BACKEND=db+$POSTGRES/${DATABASES}_meta
export AIRFLOW__CORE__EXECUTION_API_SERVER_URL=http://127.0.0.1:$PORT/execution/
export AIRFLOW__API__HOST=127.0.0.1 AIRFLOW__API__PORT=$PORT AIRFLOW__API__WORKERS=1
# Each run signs the workers' tokens with a new secret, shared by every process here.
AIRFLOW__API_AUTH__JWT_SECRET=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))')
AIRFLOW__API__SECRET_KEY=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(32))')
export AIRFLOW__API_AUTH__JWT_SECRET AIRFLOW__API__SECRET_KEY
# A killed worker's task is failed (then retried) 30 s after its last heartbeat, not 300 s.
export AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT=30
export ATALAIA_MONITORS_DIR=$WORK/monitors
export ATALAIA_HOME=$WORK/atalaia
export ATALAIA_STORE_URL=$POSTGRES/${DATABASES}_store
REFERENCE_URL=$POSTGRES/${DATABASES}_reference
META_URL=$AIRFLOW__DATABASE__SQL_ALCHEMY_CONN
mkdir -p "$WORK/logs"
atalaia() { "$(dirname "$PYTHON")/atalaia" "$@"; }

say "work folder $WORK; Airflow $("$PYTHON" -m airflow version 2>/dev/null | tail -1)"
"${CHECK[@]}" reset "$POSTGRES" "$BROKER" "${DATABASES}_meta" "${DATABASES}_store" \
    "${DATABASES}_reference"
eval "$("${CHECK[@]}" fleet "$WORK" --entities "$ENTITIES")"
say "fleet of $ENTITIES hosts: baseline $BASELINE_START .. $FIRST_DAY, scored $FIRST_DAY .. $END"

say "migrating Airflow's metadata database"
"$PYTHON" -m airflow db migrate >"$WORK/logs/db-migrate.log" 2>&1

say "ingest and train (atalaia command), on the store and on the reference store"
for url in "$ATALAIA_STORE_URL" "$REFERENCE_URL"; do
    home=$WORK/atalaia
    [ "$url" = "$REFERENCE_URL" ] && home=$WORK/reference
    ATALAIA_STORE_URL=$url ATALAIA_HOME=$home atalaia db upgrade >/dev/null
    ATALAIA_STORE_URL=$url ATALAIA_HOME=$home \
        atalaia ingest fleet --start "$BASELINE_START" --end "$FIRST_DAY" --every 1D >/dev/null
    ATALAIA_STORE_URL=$url ATALAIA_HOME=$home atalaia train fleet >/dev/null
done
say "the single-process run: atalaia score of both days on the reference store"
ATALAIA_STORE_URL=$REFERENCE_URL ATALAIA_HOME=$WORK/reference \
    atalaia ingest fleet --start "$FIRST_DAY" --end "$END" --every 1D >/dev/null
ATALAIA_STORE_URL=$REFERENCE_URL ATALAIA_HOME=$WORK/reference \
    atalaia score fleet --start "$FIRST_DAY" --end "$END" --every 1D >/dev/null

say "starting the api-server (127.0.0.1:$PORT), scheduler, dag-processor and two workers"
start api-server "$PYTHON" -m airflow api-server
start scheduler "$PYTHON" -m airflow scheduler --skip-serve-logs
start dag-processor "$PYTHON" -m airflow dag-processor
start_worker celery-w1 $((PORT + 11))
start_worker celery-w2 $((PORT + 12))

"${CHECK[@]}" wait-dag "$META_URL" "$DAG"
"$PYTHON" -m airflow dags unpause "$DAG" >"$WORK/logs/unpause.log" 2>&1
say "unpaused $DAG: catchup runs $FIRST_DAY, then $SECOND_DAY"
if [ "$KILL" = 1 ]; then
    start killer "${CHECK[@]}" kill-scoring-worker "$META_URL" "$ATALAIA_STORE_URL" \
        --worker "celery-w1=$PID_celery_w1" --worker "celery-w2=$PID_celery_w2" \
        "$DAG" "$SECOND_DAY" --timeout 900
fi

status=0
detail=$("${CHECK[@]}" wait-run "$META_URL" "$DAG" "$FIRST_DAY" --timeout 900) || status=$?
result "first day's run" "$status" "$detail"
"${CHECK[@]}" tasks "$META_URL" "$DAG" "$FIRST_DAY" | sed 's/^/       /'
status=0
detail=$("${CHECK[@]}" check-spread "$META_URL" "$DAG" "$FIRST_DAY") || status=$?
result "partitions on both workers" "$status" "$detail"

status=0
detail=$("${CHECK[@]}" wait-run "$META_URL" "$DAG" "$SECOND_DAY" --timeout 900) || status=$?
result "second day's run" "$status" "$detail"
"${CHECK[@]}" tasks "$META_URL" "$DAG" "$SECOND_DAY" | sed 's/^/       /'
if [ "$KILL" = 1 ]; then
    victim=$(head -1 "$WORK/logs/killer.log")
    say "killed $victim (kill -9 of all its processes): $(tail -1 "$WORK/logs/killer.log")"
    status=0
    detail=$("${CHECK[@]}" check-retried "$META_URL" "$ATALAIA_STORE_URL" "$DAG" "$SECOND_DAY" \
        "$victim") || status=$?
    result "killed worker's partition retried elsewhere" "$status" "$detail"
fi
status=0
detail=$("${CHECK[@]}" compare "$ATALAIA_STORE_URL" "$REFERENCE_URL" fleet) || status=$?
result "store equals the single-process run, nothing duplicated" "$status" "$detail"

say "done: $([ "$FAILED" -eq 0 ] && echo PASS || echo FAIL) in $((SECONDS - BEGAN)) s"
exit "$FAILED"
