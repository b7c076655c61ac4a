# t03_acc_vs_vfe: made by fedvim report; run `gnuplot t03_acc_vs_vfe.gp` in this folder to redraw t03_acc_vs_vfe.png
set terminal png size 900,600
set output 't03_acc_vs_vfe.png'
set title "Test accuracy against measured VFE"
set xlabel "VFE of the training images"
set ylabel "test accuracy"
set grid
set key outside right

plot 't03_acc_vs_vfe.dat' index 0 with linespoints pt 7 title "uniform", \
     't03_acc_vs_vfe.dat' index 1 with linespoints pt 7 title "guided", \
     't03_acc_vs_vfe.dat' index 2 with linespoints pt 7 title "noise", \
     't03_acc_vs_vfe.dat' index 3 with linespoints pt 7 title "anyws"
