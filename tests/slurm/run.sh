#!/usr/bin/env bash
# The workflow on a real Slurm, through profiles/slurm and snakemake-executor-plugin-slurm.
#
# Installs Debian's Slurm (munge slurmctld slurmd slurm-client), starts a private one-node
# cluster on loopback (its own munge socket, ports, state and logs under a temp folder; no
# systemd, no cgroups), then, with `snakemake --profile profiles/slurm` on tests/slurm/config.yaml
# (4 shards) in a temp working folder:
#   1. builds params.h5 in a Slurm job;
#   2. damages shard 2's inputs in params.h5 (NaN parameters) and runs the workflow: Slurm runs
#      every shard, shard 2's job fails, Snakemake must exit non-zero and report it while the
#      other shards finish (keep-going);
#   3. puts the intact params.h5 back and reruns: only shard 2, aggregate and the report run
#      (the README's resume after a cluster-side failure), and the dataset must verify.
# Every Snakemake job must appear as its own Slurm job in slurmctld's job log, with an srun
# step whose environment (recorded by a TaskProlog) has its SLURM_JOB_ID and
# HDF5_USE_FILE_LOCKING=FALSE. The daemons it started are stopped by PID on any exit.
#
# Needs root and apt-get (skips with a message otherwise) and the venv with the [slurm] extra
# (`make slurm-test` does both). KEEP=1 keeps the temp folder.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE="$ROOT/tests/slurm"
BIN=${VENV:-$ROOT/.venv}/bin
CONF=/etc/slurm/slurm.conf
MARK="# cvgen tests/slurm: private test cluster"
START=$(date +%s)

say() { echo "[slurm-test $(($(date +%s) - START))s] $*"; }
skip() {
    echo "SKIP tests/slurm/run.sh: $*"
    exit 0
}

[ "$(id -u)" -eq 0 ] || skip "needs root (installs Slurm with apt-get, starts its daemons)"
command -v apt-get >/dev/null || skip "needs apt-get (Debian/Ubuntu) to install Slurm"
"$BIN/python" -c "import snakemake_executor_plugin_slurm" 2>/dev/null ||
    { echo "FAIL: no Slurm executor plugin in $BIN: pip install -e '.[slurm]' (make slurm-test)"; exit 1; }
if [ -e "$CONF" ] && ! grep -qF "$MARK" "$CONF"; then
    skip "$CONF exists (a Slurm is configured on this machine); not touching it"
fi

# --- Slurm from Debian, without letting package scripts start any service -------------------
installed() { for tool in "$@"; do command -v "$tool" >/dev/null || return 1; done; }
if ! installed slurmctld slurmd sbatch munged; then
    say "apt-get install munge slurmctld slurmd slurm-client"
    guard=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d
        guard=/usr/sbin/policy-rc.d
        trap 'rm -f "$guard"' EXIT
    fi
    apt_install() {
        DEBIAN_FRONTEND=noninteractive timeout -k 10 400 apt-get install -y -q \
            --no-install-recommends munge slurmctld slurmd slurm-client >/dev/null
    }
    apt_install || { timeout -k 10 200 apt-get update -q >/dev/null && apt_install; }
    [ -z "$guard" ] || rm -f "$guard"
fi
say "$(slurmctld -V)"

# --- the private cluster ------------------------------------------------------------------
W=$(mktemp -d /tmp/cvgen-slurm.XXXXXX)
chmod 755 "$W"
mkdir -p "$W"/{munge,munge-key,state,spool,run,log,work}
PIDS=()
CHILD=""

ours() { [ -e "$CONF" ] && grep -qF "$W" "$CONF"; } # /etc/slurm/slurm.conf is this run's
leftovers() { # processes of this cluster's jobs: their cwd or an open file is under $W
    local proc
    for proc in /proc/[0-9]*; do
        [ "${proc#/proc/}" != $$ ] || continue
        if [[ "$(readlink "$proc/cwd" 2>/dev/null)" == "$W"* ]] ||
            ls -l "$proc/fd" 2>/dev/null | grep -qF "$W"; then
            echo "${proc#/proc/}"
        fi
    done
}

cleanup() {
    local status=$? pid pids
    set +e
    say "cleaning up: cancelling jobs left, stopping munged, slurmctld, slurmd (PIDs ${PIDS[*]})"
    if [ -n "$CHILD" ]; then # a running snakemake (its own process group): TERM, then KILL
        kill -TERM -- -"$CHILD" 2>/dev/null
        for _ in $(seq 30); do kill -0 -- -"$CHILD" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- -"$CHILD" 2>/dev/null
    fi
    if [ "${#PIDS[@]}" -eq 3 ] && ours; then # then cancel whatever is left, wait for the steps
        pids=$(squeue -h -t PD,R,CG,S -o %i 2>/dev/null)
        [ -z "$pids" ] || scancel --full $pids
        for _ in $(seq 60); do
            pids=$(squeue -h -t PD,R,CG,S -o %i 2>/dev/null) && [ -z "$pids" ] && break
            sleep 0.5
        done
    fi
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do # slurmd, slurmctld, munged: only ours
        pid=${PIDS[$i]}
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL "$pid" 2>/dev/null
    done
    pids=$(leftovers)
    if [ -n "$pids" ]; then
        echo "killing processes left by this cluster's jobs: $pids"
        kill -KILL $pids 2>/dev/null
    fi
    ours && rm -f "$CONF"
    if [ "$status" -ne 0 ]; then
        echo "--- slurm test failed (exit $status); logs:"
        tail -n 30 "$W"/log/slurmctld.log "$W"/log/slurmd.log "$W"/log/*.out 2>/dev/null
    fi
    if [ "${KEEP:-0}" = 1 ]; then echo "kept $W"; else rm -rf "$W"; fi
    say "done (exit $status)"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 143' TERM
trap 'exit 130' INT

# Daemons and snakemake run in sessions of their own (setsid): `timeout` signals its whole
# process group, and the daemons must outlive that signal until cleanup has cancelled the jobs.
chown munge:munge "$W/munge" "$W/munge-key"
chmod 755 "$W/munge"    # the socket: every user's clients connect
chmod 700 "$W/munge-key" # the key, its seed and log: munge only
dd if=/dev/urandom of="$W/munge-key/munge.key" bs=1024 count=1 status=none
chown munge:munge "$W/munge-key/munge.key"
chmod 400 "$W/munge-key/munge.key"
setsid setpriv --reuid=munge --regid=munge --init-groups munged --foreground \
    --socket="$W/munge/munge.socket.2" --key-file="$W/munge-key/munge.key" \
    --pid-file="$W/munge/munged.pid" --seed-file="$W/munge-key/munged.seed" \
    --log-file="$W/munge-key/munged.log" >"$W/log/munged.out" 2>&1 &
PIDS+=($!)

host=$(hostname -s)
read -r ctld_port slurmd_port < <("$BIN/python" -c '
import socket
sockets = [socket.socket() for _ in range(2)]
for s in sockets:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in sockets))')
measured=$(slurmd -C | head -n 1)
cpus=$(sed -E 's/.* CPUs=([0-9]+).*/\1/' <<<"$measured")
memory=$(($(sed -E 's/.*RealMemory=([0-9]+).*/\1/' <<<"$measured") * 8 / 10))
printf '#!/bin/sh\necho "SLURM_JOB_ID=$SLURM_JOB_ID SLURM_STEP_ID=${SLURM_STEP_ID:-batch}' \
    >"$W/task_prolog.sh"
printf ' HDF5_USE_FILE_LOCKING=${HDF5_USE_FILE_LOCKING:-unset} PWD=$PWD" >>%s\n' \
    "$W/log/tasks.log" >>"$W/task_prolog.sh"
chmod 755 "$W/task_prolog.sh"
mkdir -p "$(dirname "$CONF")"
{
    echo "$MARK ($W); removed when the test ends"
    sed -e "s|@WORK@|$W|g" -e "s|@HOST@|$host|g" -e "s|@CPUS@|$cpus|" \
        -e "s|@MEMORY_MB@|$memory|" -e "s|@CTLD_PORT@|$ctld_port|" \
        -e "s|@SLURMD_PORT@|$slurmd_port|" -e "s|@PARTITION@|debug|" "$HERE/slurm.conf.in"
    echo "TaskProlog=$W/task_prolog.sh"
} >"$CONF"
for _ in $(seq 20); do [ -S "$W/munge/munge.socket.2" ] && break; sleep 0.25; done
setsid slurmctld -D >"$W/log/slurmctld.out" 2>&1 &
PIDS+=($!)
setsid slurmd -D -N "$host" >"$W/log/slurmd.out" 2>&1 &
PIDS+=($!)
say "munged, slurmctld, slurmd started (PIDs ${PIDS[*]}); node $host: $cpus CPUs, $memory MB"
for i in $(seq 60); do
    [ "$(sinfo -h -n "$host" -o %T 2>/dev/null)" = idle ] && break
    [ "$i" -lt 60 ] || { echo "FAIL: node $host never became idle"; sinfo; exit 1; }
    sleep 1
done
say "node idle: $(sinfo -h -o '%P %D %T %c %m')"

# --- the workflow through profiles/slurm ----------------------------------------------------
# Test-cluster settings (no accounting database here): poll squeue, not sacct, soon after
# submission (MinJobAge=300 >= 3 x 5 s keeps finished jobs visible to squeue); keep each job's
# Slurm log as evidence.
workflow() {
    local name=$1
    shift
    cd "$ROOT"
    setsid timeout -k 10 300 "$BIN/snakemake" -s Snakefile --directory "$W/work" \
        --configfile tests/slurm/config.yaml --profile profiles/slurm \
        --slurm-status-command squeue --slurm-init-seconds-before-status-checks 5 \
        --slurm-keep-successful-logs "$@" >"$W/log/$name.out" 2>&1 &
    CHILD=$!
    local status=0
    wait "$CHILD" || status=$?
    CHILD=""
    say "workflow $name: exit $status"
    return "$status"
}
checks() { "$BIN/python" "$HERE/checks.py" "$@"; }
PARAMS="$W/work/results/slurm_test/params.h5"

workflow params results/slurm_test/params.h5 || { tail -n 40 "$W/log/params.out"; exit 1; }
cp -p "$PARAMS" "$W/params.intact.h5" # -p: keeps its time stamp, so restoring it reruns nothing
checks corrupt-shard-inputs "$PARAMS" 2 tests/slurm/config.yaml
if workflow broken --retries 0; then
    tail -n 40 "$W/log/broken.out"
    echo "FAIL: the workflow succeeded although shard 2's job must fail"
    exit 1
fi
grep -m1 -A7 "Error in rule generate_shard" "$W/log/broken.out" | sed 's/^/    /'
grep -m1 "cvgen error" "$W/log/broken.out" | sed 's/^/    /'
checks failed-run "$W/log/broken.out" "$W/work" tests/slurm/config.yaml 2 "$W/log"

cp -p "$W/params.intact.h5" "$PARAMS"
workflow resume || { tail -n 40 "$W/log/resume.out"; exit 1; }
grep -E "^(generate_shard|aggregate|performance_report|total) " "$W/log/resume.out" | sed 's/^/    /'
checks verify "$W/work" tests/slurm/config.yaml
checks jobs "$W/log" "$W/log/params.out" "$W/log/broken.out" "$W/log/resume.out"

say "squeue -t all (finished jobs stay listed for MinJobAge):"
squeue -t all -o "%.6i %.9T %.10M %.4C %.8m %.6l %R %k" | sed 's/^/    /'
say "slurmctld.log:"
grep -E "sched: Allocate|_job_complete" "$W/log/slurmctld.log" | head -n 8 | sed 's/^/    /'
say "PASS: the workflow ran on Slurm; wall time $(($(date +%s) - START)) s"
