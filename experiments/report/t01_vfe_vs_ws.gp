# t01_vfe_vs_ws: made by fedvim report; run `gnuplot t01_vfe_vs_ws.gp` in this folder to redraw t01_vfe_vs_ws.png
set terminal png size 900,600
set output 't01_vfe_vs_ws.png'
set title "VFE against window size"
set xlabel "window size WS"
set ylabel "VFE"
set grid
set key outside right
set logscale x 2
plot 't01_vfe_vs_ws.dat' index 0 with linespoints pt 7 title "uniform", \
     't01_vfe_vs_ws.dat' index 1 with linespoints pt 7 title "block", \
     't01_vfe_vs_ws.dat' index 2 with linespoints pt 7 title "anyws"
