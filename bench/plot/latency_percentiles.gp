# Latency percentiles per tool: one cluster per tool, one bar per
# percentile, log scale.  Called by bench/compare:
#   gnuplot -c latency_percentiles.gp OUT.png TITLE FILE
# FILE has a header "tool p50 p90 p99 p99.9 max", then one line per tool
# with medians over the runs, in microseconds.
set terminal pngcairo size 900,560 font ",10" noenhanced
set output ARG1
set title ARG2
set ylabel "latency (us, log scale)"
set logscale y
set grid ytics
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set key top left box
plot for [c=2:6] ARG3 using c:xtic(1) title columnheader(c)
