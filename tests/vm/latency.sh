#!/usr/bin/env bash
# takt's real-time loop against cyclictest, on the same kernel in the same run.
#
# Usage: tests/vm/latency.sh --takt BIN [--cycles N] [--period-us US] [--priority P] [--cpu C]
#                            [--cell FILE]
#
# Runs cyclictest (rt-tests) with one SCHED_FIFO thread, then `takt bench latency` (idle and
# busy: the demo cell in lockstep), with the same period, priority, length and CPU, both with
# locked memory and /dev/cpu_dma_latency held at 0, and prints their wake-up latency side by
# side with the ratios of takt's p99 and max to cyclictest's. cyclictest is the kernel's own
# limit on this host: takt cannot beat it, the goal is not to add to it (p99 within 1.2x).
#
# Percentiles use the same rule for both: the upper edge of the 1 us histogram bin holding
# the sample of nearest rank, at most the maximum. Latencies past 10 ms land in the last bin
# of both histograms; the maximum is exact in both.
#
# Meant for the RT-kernel VM (tests/vm/run.sh -- tests/vm/latency.sh --takt target/.../takt)
# or a real PREEMPT_RT host; it asserts nothing about absolute latencies.
set -euo pipefail

takt=
cycles=10000
period_us=1000
priority=80
cpu=
cell=config/cell.toml
while (($# > 0)); do
    case $1 in
    --takt) takt=$2; shift 2 ;;
    --cycles) cycles=$2; shift 2 ;;
    --period-us) period_us=$2; shift 2 ;;
    --priority) priority=$2; shift 2 ;;
    --cpu) cpu=$2; shift 2 ;;
    --cell) cell=$2; shift 2 ;;
    *) sed -n '4,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
    esac
done
[[ -x $takt ]] || { echo "latency.sh: give --takt BIN (an executable takt)" >&2; exit 2; }
command -v cyclictest >/dev/null || { echo "latency.sh: cyclictest missing (apt install rt-tests)" >&2; exit 2; }

bins=10000
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

affinity=()
takt_cpu=()
if [[ -n $cpu ]]; then
    affinity=(-a "$cpu")
    takt_cpu=(--cpu "$cpu")
fi

# cyclictest: histogram lines "BIN COUNT" (BIN in us), then "# Max Latencies: N" and
# "# Histogram Overflows: N".
cyclictest -q -m --policy=fifo -p "$priority" -i "$period_us" -l "$cycles" -h "$bins" \
    "${affinity[@]}" >"$work/cyclictest.txt"

# p50 p99 p99.9 max, in us, from the histogram.
cyclictest_row() {
    awk -v bins="$bins" '
        /^[0-9]+ [0-9]+$/ { n[$1 + 0] = $2 + 0; total += $2; next }
        /^# Histogram Overflows:/ { over = $4 + 0 }
        /^# Max Latencies:/ { max = $4 + 0 }
        END {
            total += over
            split("0.5 0.99 0.999", qs, " ")
            for (k = 1; k <= 3; k++) {
                rank = int(qs[k] * total); if (rank < qs[k] * total) rank++; if (rank < 1) rank = 1
                seen = 0; v = bins
                for (b = 0; b < bins; b++) { seen += n[b]; if (seen >= rank) { v = b + 1; break } }
                if (v > max) v = max
                out[k] = v
            }
            printf "%d %d %d %d\n", out[1], out[2], out[3], max
        }' "$1"
}
read -r c50 c99 c999 cmax <<<"$(cyclictest_row "$work/cyclictest.txt")"

period_ms=$(awk -v us="$period_us" 'BEGIN { printf "%gms", us / 1000 }')
"$takt" bench latency --cycles "$cycles" --period "$period_ms" --priority "$priority" \
    "${takt_cpu[@]}" --cell "$cell" >"$work/takt.txt" 2>"$work/takt.err" || {
    cat "$work/takt.txt" "$work/takt.err"
    exit 1
}
# Rows: load cycles p50 p99 p99.9 max overruns.
# (Here-strings, not process substitution: the test VM has no /dev/fd.)
read -r _ _ i50 i99 i999 imax iover <<<"$(grep '^idle ' "$work/takt.txt")"
read -r _ _ b50 b99 b999 bmax bover <<<"$(grep '^busy ' "$work/takt.txt")"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "inf" }'; }
met() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= 1.2 * b) ? "met" : "NOT met" }'; }

echo "wake-up latency on $(uname -r) ($(uname -v))"
echo "period ${period_us} us, SCHED_FIFO ${priority}, ${cycles} cycles, CPU ${cpu:-not pinned}"
head -1 "$work/takt.txt"
printf '%-12s %8s %8s %9s %8s %9s\n' "" p50_us p99_us p99.9_us max_us overruns
printf '%-12s %8s %8s %9s %8s %9s\n' cyclictest "$c50" "$c99" "$c999" "$cmax" -
printf '%-12s %8s %8s %9s %8s %9s\n' "takt idle" "$i50" "$i99" "$i999" "$imax" "$iover"
printf '%-12s %8s %8s %9s %8s %9s\n' "takt busy" "$b50" "$b99" "$b999" "$bmax" "$bover"
grep '^busy compute' "$work/takt.txt" || true
echo "ratio takt idle / cyclictest: p99 $(ratio "$i99" "$c99")x, max $(ratio "$imax" "$cmax")x"
echo "ratio takt busy / cyclictest: p99 $(ratio "$b99" "$c99")x, max $(ratio "$bmax" "$cmax")x"
echo "goal, takt p99 within 1.2x of cyclictest p99: idle $(met "$i99" "$c99"), busy $(met "$b99" "$c99")"
