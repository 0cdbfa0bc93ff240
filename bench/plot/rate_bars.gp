# One rate per tool (calls/s, round trips/s, Gbit/s) as bars, median with
# min-max error bars.  Called by bench/compare:
#   gnuplot -c rate_bars.gp OUT.png TITLE YLABEL FILE
# FILE holds "tool median min max" lines.
set terminal pngcairo size 900,560 font ",10" noenhanced
set output ARG1
set title ARG2
set ylabel ARG3
set yrange [0:*]
set format y "%.1s%c"
set grid ytics
set style data histograms
set style histogram errorbars gap 1 lw 1
set style fill solid 0.85 border -1
plot ARG4 using 2:3:4:xtic(1) notitle
