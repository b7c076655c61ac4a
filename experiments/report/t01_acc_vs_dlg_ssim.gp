# t01_acc_vs_dlg_ssim: made by fedvim report; run `gnuplot t01_acc_vs_dlg_ssim.gp` in this folder to redraw t01_acc_vs_dlg_ssim.png
set terminal png size 900,600
set output 't01_acc_vs_dlg_ssim.png'
set title "Test accuracy against DLG's SSIM to the original"
set xlabel "DLG reconstruction SSIM to the original (lower: more private)"
set ylabel "test accuracy"
set grid
set key outside right

plot 't01_acc_vs_dlg_ssim.dat' index 0 with linespoints pt 7 title "none", \
     't01_acc_vs_dlg_ssim.dat' index 1 with linespoints pt 7 title "uniform", \
     't01_acc_vs_dlg_ssim.dat' index 2 with linespoints pt 7 title "guided", \
     't01_acc_vs_dlg_ssim.dat' index 3 with linespoints pt 7 title "block", \
     't01_acc_vs_dlg_ssim.dat' index 4 with linespoints pt 7 title "noise", \
     't01_acc_vs_dlg_ssim.dat' index 5 with linespoints pt 7 title "instahide", \
     't01_acc_vs_dlg_ssim.dat' index 6 with linespoints pt 7 title "anyws"
