# t12_acc_vs_vfe: made by fedvim report; run `gnuplot t12_acc_vs_vfe.gp` in this folder to redraw t12_acc_vs_vfe.png
set terminal png size 900,600
set output 't12_acc_vs_vfe.png'
set title "Test accuracy against measured VFE"
set xlabel "VFE of the training images"
set ylabel "test accuracy"
set grid
set key outside right

plot 't12_acc_vs_vfe.dat' index 0 with linespoints pt 7 title "all"
