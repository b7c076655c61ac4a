# t00_acc_vs_dlg_ssim: made by fedvim report; run `gnuplot t00_acc_vs_dlg_ssim.gp` in this folder to redraw t00_acc_vs_dlg_ssim.png
set terminal png size 900,600
set output 't00_acc_vs_dlg_ssim.png'
set title "Test accuracy against DLG's SSIM to the original"
set xlabel "DLG reconstruction SSIM to the original (lower: more private)"
set ylabel "test accuracy"
set grid
set key outside right

plot 't00_acc_vs_dlg_ssim.dat' index 0 with linespoints pt 7 title "none", \
     't00_acc_vs_dlg_ssim.dat' index 1 with linespoints pt 7 title "uniform", \
     't00_acc_vs_dlg_ssim.dat' index 2 with linespoints pt 7 title "guided", \
     't00_acc_vs_dlg_ssim.dat' index 3 with linespoints pt 7 title "anyws"
