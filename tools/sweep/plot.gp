# Cost curves from tools/sweep/run's medians (medians.py's .dat files):
#   gnuplot -e "dir='sweep-out/<run>'; plots='docs/bench'" tools/sweep/plot.gp
# Columns of single-<server>.dat and cluster.dat: 1 clients, 2 RSS KiB per
# connection, 3 server CPU µs per connect, 4 connects/s, 5 p50 ms paced,
# 6 p99 ms paced, 7 fan-out p99 ms paced, 8 server CPU µs per delivery
# paced, 9 deliveries/s back to back, 10 p50 ms back to back, 11 p99 ms
# back to back, 12 server CPU µs per delivery back to back. cluster.dat's
# blocks: 0 one stream paced, 1 one stream back to back, 2 many streams.

fileok(f) = system("test -s '" . f . "' && echo 1 || echo 0") + 0
ch = dir . "/single-cablehub.dat"
ac = dir . "/single-anycable.dat"
cl = dir . "/cluster.dat"
have_ac = fileok(ac)
have_cl = fileok(cl) && system("grep -c '^[0-9]' '" . cl . "'") + 0 > 0

set terminal svg size 640,440 dynamic font "sans,12" background "white"
set datafile missing "NaN"
set logscale x
set xrange [700:150000]
set xtics ("1k" 1000, "5k" 5000, "10k" 10000, "19k" 19000, "100k" 100000)
set grid
set key below
set xlabel "connections (one node; 100k: six nodes on Redis)"
set style line 1 lc rgb "#1f77b4" lw 2 pt 7 ps 0.8
set style line 2 lc rgb "#d62728" lw 2 pt 5 ps 0.8
set style line 3 lc rgb "#1f77b4" lw 2 pt 9 ps 1.2
set style line 4 lc rgb "#1f77b4" lw 2 dt 2 pt 6 ps 0.8
set style line 5 lc rgb "#d62728" lw 2 dt 2 pt 4 ps 0.8

# curve(col, title): the plot command for one column of both servers
# and, at 100k, the cluster's point (block blk of cluster.dat).
curve(col, name, blk) = sprintf("'%s' using 1:%d with linespoints ls 1 title 'Cablehub%s'", ch, col, name) \
	. (have_ac ? sprintf(", '%s' using 1:%d with linespoints ls 2 title 'AnyCable 1.6.16%s'", ac, col, name) : "") \
	. (have_cl && blk >= 0 ? sprintf(", '%s' index %d using 1:%d with points ls 3 title 'Cablehub, 6 nodes%s'", cl, blk, col, name) : "")

set output plots . "/cost-rss-per-connection.svg"
set title "Server RSS per idle subscribed connection"
set ylabel "KiB per connection"
set yrange [0:*]
eval "plot " . curve(2, "", 0)

set output plots . "/cost-cpu-per-connect.svg"
set title "Server CPU per connect + welcome + subscribe"
set ylabel "µs per connection"
eval "plot " . curve(3, "", 0)

set output plots . "/cost-connect-rate.svg"
set title "Connect + welcome + subscribe rate (one client process per node)"
set ylabel "connections/s"
eval "plot " . curve(4, "", 0)

set output plots . "/cost-fanout-deliveries.svg"
set title "Fan-out to one stream, publications back to back"
set ylabel "deliveries/s"
set format y "%.0s%c"
eval "plot " . curve(9, "", 1)
set format y "%g"

set output plots . "/cost-fanout-latency.svg"
set title "Fan-out to one stream: publish→receive latency, 2 publications/s (100k: 0.5/s)"
set ylabel "ms"
set logscale y
set yrange [*:*]
eval "plot " . curve(5, " p50", 0) . ", " . sprintf("'%s' using 1:6 with linespoints ls 4 title 'Cablehub p99'", ch) \
	. (have_ac ? sprintf(", '%s' using 1:6 with linespoints ls 5 title 'AnyCable 1.6.16 p99'", ac) : "") \
	. (have_cl ? sprintf(", '%s' index 0 using 1:6 with points ls 3 pt 8 title 'Cablehub, 6 nodes p99'", cl) : "")
unset logscale y

set output plots . "/cost-cpu-per-delivery.svg"
set title "Server CPU per delivery (all nodes at 100k)"
set ylabel "µs per delivery"
set yrange [0:*]
eval "plot " . curve(8, ", paced", 0) . ", " . sprintf("'%s' using 1:12 with linespoints ls 4 title 'Cablehub, back to back'", ch) \
	. (have_ac ? sprintf(", '%s' using 1:12 with linespoints ls 5 title 'AnyCable 1.6.16, back to back'", ac) : "") \
	. (have_cl ? sprintf(", '%s' index 1 using 1:12 with points ls 3 pt 8 title 'Cablehub, 6 nodes, back to back'", cl) : "")
