# t01_loss_per_round: made by fedvim report; run `gnuplot t01_loss_per_round.gp` in this folder to redraw t01_loss_per_round.png
set terminal png size 900,600
set output 't01_loss_per_round.png'
set title "Training loss per round"
set xlabel "round"
set ylabel "training loss"
set grid
set key outside right

plot 't01_loss_per_round.dat' index 0 with linespoints pt 7 title "sgd", \
     't01_loss_per_round.dat' index 1 with linespoints pt 7 title "adam", \
     't01_loss_per_round.dat' index 2 with linespoints pt 7 title "adam\\_lr3e-3", \
     't01_loss_per_round.dat' index 3 with linespoints pt 7 title "stadam", \
     't01_loss_per_round.dat' index 4 with linespoints pt 7 title "stadam\\_mu0.9", \
     't01_loss_per_round.dat' index 5 with linespoints pt 7 title "stadam\\_mu0.9\\_lr1e-4"
