# t00_cost_vs_attack_ssim: made by fedvim report; run `gnuplot t00_cost_vs_attack_ssim.gp` in this folder to redraw t00_cost_vs_attack_ssim.png
set terminal png size 900,600
set output 't00_cost_vs_attack_ssim.png'
set title "Accuracy cost against the strongest attack's SSIM"
set xlabel "median SSIM of the best attack's output to the original (lower: more private)"
set ylabel "accuracy cost (points, log scale)"
set grid
set key outside right
set logscale y
set xrange [0:1]
set arrow from 0.3, graph 0 to 0.3, graph 1 nohead dt 2 lc rgb 'gray'
set arrow from graph 0, first 2 to graph 1, first 2 nohead dt 2 lc rgb 'gray'
plot 't00_cost_vs_attack_ssim.dat' index 0 with points pt 7 title "mnist", \
     't00_cost_vs_attack_ssim.dat' index 1 with points pt 7 title "fashion", \
     't00_cost_vs_attack_ssim.dat' index 2 with points pt 7 title "cmnist"
