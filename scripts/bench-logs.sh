#!/usr/bin/env bash
# The log-processor benchmark (`make bench-logs`): `autoscaler logs summarize` against
# `pigz -dc` (decompression alone) and GoAccess (a C log analyzer with an AWSALB format) on
# a generated 1,000,000-line gzip ALB log, and peak memory on a file ten times larger.
# usage: scripts/bench-logs.sh AUTOSCALER_BINARY GENERATOR_BINARY WORK_DIR
set -euo pipefail

autoscaler=$1 generator=$2 dir=$3
mkdir -p "$dir"
log=$dir/alb-1m.log.gz big=$dir/alb-10m.log.gz
if [ ! -s "$log" ]; then
  "$generator" 1000000 | pigz -6 > "$log.tmp" && mv "$log.tmp" "$log"
fi
if [ ! -s "$big" ]; then
  # Ten gzip members back to back: one valid (multi-member) gzip stream of 10,000,000 lines.
  for _ in 1 2 3 4 5 6 7 8 9 10; do cat "$log"; done > "$big.tmp" && mv "$big.tmp" "$big"
fi
echo "input: $(pigz -dc "$log" | wc -l) lines, $(( $(pigz -dc "$log" | wc -c) / 1000000 )) MB uncompressed, $(( $(stat -c %s "$log") / 1000000 )) MB gzip"

runs=3
# The best of $runs runs of a command (its wall, user+sys and peak RSS), "wall cpu rss_kb".
measure() {
  local best=""
  for _ in $(seq $runs); do
    /usr/bin/time -f "%e %U %S %M" -o "$dir/time.txt" "$@" > /dev/null
    read -r wall user sys rss < "$dir/time.txt"
    local row
    row=$(awk -v w="$wall" -v u="$user" -v s="$sys" -v r="$rss" 'BEGIN { printf "%.2f %.2f %d", w, u + s, r }')
    if [ -z "$best" ] || awk -v a="$row" -v b="$best" 'BEGIN { split(a, x, " "); split(b, y, " "); exit !(x[1] < y[1]) }'; then
      best=$row
    fi
  done
  echo "$best"
}

pigz_row=$(measure pigz -dc "$log")
ours_row=$(measure "$autoscaler" logs summarize --json "$log")
goaccess_row=$(measure bash -c "pigz -dc '$log' | goaccess - --log-format=AWSALB --no-progress -o '$dir/goaccess.json'")
big_row=$(measure "$autoscaler" logs summarize --json "$big")

printf '\n%-44s %8s %8s %10s\n' "1,000,000 lines" "wall s" "cpu s" "peak MiB"
for name in pigz ours goaccess; do
  row_var="${name}_row"; read -r wall cpu rss <<< "${!row_var}"
  label=$name
  case $name in
    pigz) label="pigz -dc (decompression only)" ;;
    ours) label="autoscaler logs summarize --json" ;;
    goaccess) label="pigz -dc | goaccess --log-format=AWSALB" ;;
  esac
  printf '%-44s %8s %8s %10.1f\n' "$label" "$wall" "$cpu" "$(awk -v r="$rss" 'BEGIN { print r / 1024 }')"
done
read -r big_wall big_cpu big_rss <<< "$big_row"
printf '%-44s %8s %8s %10.1f\n' "autoscaler, 10,000,000 lines (10 members)" "$big_wall" "$big_cpu" "$(awk -v r="$big_rss" 'BEGIN { print r / 1024 }')"

read -r pigz_wall pigz_cpu _ <<< "$pigz_row"
read -r ours_wall ours_cpu ours_rss <<< "$ours_row"
echo
awk -v oc="$ours_cpu" -v pc="$pigz_cpu" -v ow="$ours_wall" -v pw="$pigz_wall" -v r1="$ours_rss" -v r10="$big_rss" 'BEGIN {
  printf "cpu  ratio to pigz: %.2f (target <= 1.5)\n", oc / pc
  printf "wall ratio to pigz: %.2f (target <= 1.3)\n", ow / pw
  printf "peak RSS: %.1f MiB at 1x, %.1f MiB at 10x (target <= 64)\n", r1 / 1024, r10 / 1024
}'
# The counts agree: every line a request, in both tools.
ours_requests=$("$autoscaler" logs summarize --json "$log" | python3 -c 'import json, sys
d = json.load(sys.stdin)
print(int(sum(m["value"] for m in d["metrics"] if m["name"] == "RequestCount" and list(m["dimensions"]) == ["LoadBalancer"])))')
goaccess_requests=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["general"]["total_requests"])' "$dir/goaccess.json")
echo "requests counted: autoscaler $ours_requests, goaccess $goaccess_requests"
