# t05_acc_vs_vfe: made by fedvim report; run `gnuplot t05_acc_vs_vfe.gp` in this folder to redraw t05_acc_vs_vfe.png
set terminal png size 900,600
set output 't05_acc_vs_vfe.png'
set title "Test accuracy against measured VFE"
set xlabel "VFE of the training images"
set ylabel "test accuracy"
set grid
set key outside right

plot 't05_acc_vs_vfe.dat' index 0 with linespoints pt 7 title "plain", \
     't05_acc_vs_vfe.dat' index 1 with linespoints pt 7 title "vmix", \
     't05_acc_vs_vfe.dat' index 2 with linespoints pt 7 title "uniform4", \
     't05_acc_vs_vfe.dat' index 3 with linespoints pt 7 title "noise0.1", \
     't05_acc_vs_vfe.dat' index 4 with linespoints pt 7 title "noise0.25", \
     't05_acc_vs_vfe.dat' index 5 with linespoints pt 7 title "instahide2", \
     't05_acc_vs_vfe.dat' index 6 with linespoints pt 7 title "instahide4"
