# Throughput against message size, one line per tool, median with min-max
# bars.  Called by bench/compare:
#   gnuplot -c throughput_vs_size.gp OUT.png TITLE YLABEL "F1 F2 .." "N1 N2 .." XTICS
# Each Fi holds "size_bytes median min max" lines; XTICS is a gnuplot tic
# list such as ("4K" 4096, "16K" 16384).
out = ARG1
files = ARG4
names = ARG5
xt = ARG6
set terminal pngcairo size 900,560 font ",10" noenhanced
set output out
set title ARG2
set xlabel "message size (bytes)"
set ylabel ARG3
set logscale x 2
set offsets graph 0.05, graph 0.05, 0, 0
set xtics @xt
set yrange [0:*]
set grid
set key top left box
plot for [i=1:words(files)] word(files, i) using 1:2:3:4 \
     with yerrorlines lw 2 pt 7 title word(names, i)
