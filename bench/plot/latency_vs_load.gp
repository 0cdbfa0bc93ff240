# Latency against achieved load, one colour per tool: p99 solid, p50
# dashed, both axes log scale (the eRPC / wrk2 latency-throughput curve).
# Called by bench/compare --workloads load:
#   gnuplot -c latency_vs_load.gp OUT.png TITLE "FILES" "NAMES"
# Each FILE has lines "achieved_calls_per_s p50_us p99_us" (medians of the
# runs at one offered load), sorted by achieved rate.
set terminal pngcairo size 900,560 font ",10" noenhanced
set output ARG1
set title ARG2
set xlabel "achieved calls/s (log scale)"
set ylabel "latency from intended send time (us, log scale)"
set logscale xy
set grid xtics ytics mxtics mytics
set key top left box
files = ARG3
names = ARG4
plot for [i=1:words(files)] word(files, i) using 1:3 with linespoints lw 2 pt 7 lc i title word(names, i)." p99", \
     for [i=1:words(files)] word(files, i) using 1:2 with linespoints lw 1 dt 2 pt 6 lc i title word(names, i)." p50"
