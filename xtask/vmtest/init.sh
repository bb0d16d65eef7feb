#!/bin/busybox sh
# PID 1 of the vmtest guest. It only runs things and records them: every output is framed on the
# console (`@@vmtest file NAME` ... `@@vmtest eof`) and the host parses and asserts all of it.
# /checks.list (written by the host) names the checks to run, one per line.

/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mkdir -p /sys/fs/cgroup /mnt && mount -t cgroup2 cgroup2 /sys/fs/cgroup
# Kernel messages would break into the framed output.
echo 1 >/proc/sys/kernel/printk

say() { echo "@@vmtest $*"; }
emit() { # NAME FILE
    say "file $1"
    cat "$2" 2>/dev/null
    echo
    say "eof"
}
fatal() {
    say "fatal $*"
    poweroff -f
}
# Polls (every 50 ms, at most $1 times) until the command in the other arguments succeeds.
poll() {
    n=$1
    shift
    while ! "$@"; do
        n=$((n - 1))
        [ "$n" -le 0 ] && return 1
        usleep 50000
    done
}
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
dead() { ! alive "$1"; }
stopped() { grep -q '^State:.*T' "/proc/$1/status" 2>/dev/null; }
announced() { grep -q '^source:' "$1" || ! alive "$2"; }
lines() { wc -l <"$1"; }
lines_at_least() { [ "$(lines "$1")" -ge "$2" ]; }

# The network namespace checks use busybox's unshare.
unshare --help 2>&1 | grep -q -- '--net' || fatal "this busybox has no unshare applet with --net"

while read -r module; do
    insmod "/lib/modules/vmtest/$module" || fatal "insmod $module failed"
done </modules.list
poll 200 test -b /dev/vda || fatal "no /dev/vda after loading $(tr '\n' ' ' </modules.list)"
mount -t ext4 /dev/vda /mnt || fatal "mounting /dev/vda (ext4) failed"

uname -r >/tmp/uname
if [ -e /sys/kernel/btf/vmlinux ]; then echo yes; else echo no; fi >/tmp/btf
emit info/uname /tmp/uname
emit info/btf /tmp/btf

hide_btf() { mount -t tmpfs -o size=4k nobtf /sys/kernel/btf || fatal "cannot hide BTF"; }
show_btf() { umount /sys/kernel/btf; }

# NAME NETNS(init|new) ARGS...: profiler ARGS to completion, in the initial or a new network namespace.
run_check() {
    name=$1 netns=$2
    shift 2
    set -- /bin/profiler "$@"
    [ "$netns" = new ] && set -- unshare -n "$@"
    timeout 300 "$@" </dev/null >/tmp/out 2>/tmp/err
    echo $? >/tmp/rc
    emit "$name/stdout" /tmp/out
    emit "$name/stderr" /tmp/err
    emit "$name/rc" /tmp/rc
}

# NAME NETNS BTF(yes|hidden) SOURCE: the workload's /proc/PID/io around its operations on the ext4
# disk, and the two profiler refreshes taken while it was stopped before and after them.
workload_check() {
    name=$1 netns=$2 btf=$3 source=$4
    rm -f /mnt/data /tmp/json /tmp/err
    sync
    echo 3 >/proc/sys/vm/drop_caches
    [ "$btf" = hidden ] && hide_btf
    set -- /bin/profiler --source "$source" -b --json -d 0.25 -n 2000
    [ "$netns" = new ] && set -- unshare -n "$@"
    "$@" </dev/null >/tmp/json 2>/tmp/err &
    profiler=$!
    : >/tmp/meta
    if poll 2400 announced /tmp/err "$profiler" && alive "$profiler"; then
        /bin/workload --stop write:/mnt/data:2048:4096 direct-read:/mnt/data:2048:4096 &
        pid=$!
        echo "pid=$pid" >>/tmp/meta
        # A refresh that began after the workload stopped is complete once two more lines exist
        # than when it was seen stopped.
        for phase in before after; do
            poll 1200 stopped "$pid" || echo "error=workload never stopped ($phase)" >>/tmp/meta
            cat "/proc/$pid/io" >"/tmp/io_$phase"
            target=$(($(lines /tmp/json) + 2))
            poll 1200 lines_at_least /tmp/json "$target" || echo "error=no refresh while stopped ($phase)" >>/tmp/meta
            at=$(lines /tmp/json)
            echo "line_$phase=$at" >>/tmp/meta
            sed -n "${at}p" /tmp/json >"/tmp/json_$phase"
            kill -CONT "$pid"
        done
        wait "$pid"
        echo "workload_rc=$?" >>/tmp/meta
        kill -TERM "$profiler"
        poll 200 dead "$profiler" || kill -KILL "$profiler"
        wait "$profiler"
        echo "profiler_rc=$?" >>/tmp/meta
    else
        wait "$profiler"
        echo "profiler_rc=$?" >>/tmp/meta
        echo "error=profiler exited before announcing its source" >>/tmp/meta
    fi
    [ "$btf" = hidden ] && show_btf
    emit "$name/meta" /tmp/meta
    emit "$name/stderr" /tmp/err
    emit "$name/io_before" /tmp/io_before
    emit "$name/io_after" /tmp/io_after
    emit "$name/json_before" /tmp/json_before
    emit "$name/json_after" /tmp/json_after
    rm -f /tmp/io_before /tmp/io_after /tmp/json_before /tmp/json_after
}

while read -r check <&3; do
    say "check $check (at $(cut -d' ' -f1 /proc/uptime)s)"
    # shellcheck disable=SC2086 # each line is the check's arguments
    set -- $check
    kind=$1
    shift
    case "$kind" in
    run) run_check "$@" ;;
    workload) workload_check "$@" ;;
    *) fatal "unknown check kind $kind" ;;
    esac
done 3</checks.list
say done
umount /mnt
poweroff -f
