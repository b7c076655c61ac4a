# fl_accuracy_per_round: made by fedvim report; run `gnuplot fl_accuracy_per_round.gp` in this folder to redraw fl_accuracy_per_round.png
set terminal png size 900,600
set output 'fl_accuracy_per_round.png'
set title "Test accuracy per round (fedvim run)"
set xlabel "round"
set ylabel "test accuracy"
set grid
set key outside right
set yrange [0:1]
plot 'fl_accuracy_per_round.dat' index 0 with linespoints pt 7 title "stadam\\_cpu\\_adam", \
     'fl_accuracy_per_round.dat' index 1 with linespoints pt 7 title "stadam\\_cpu\\_adam (mixed test images)", \
     'fl_accuracy_per_round.dat' index 2 with linespoints pt 7 title "stadam\\_cpu\\_adam\\_lr3e-3", \
     'fl_accuracy_per_round.dat' index 3 with linespoints pt 7 title "stadam\\_cpu\\_adam\\_lr3e-3 (mixed test images)", \
     'fl_accuracy_per_round.dat' index 4 with linespoints pt 7 title "stadam\\_cpu\\_sgd", \
     'fl_accuracy_per_round.dat' index 5 with linespoints pt 7 title "stadam\\_cpu\\_sgd (mixed test images)", \
     'fl_accuracy_per_round.dat' index 6 with linespoints pt 7 title "stadam\\_cpu\\_stadam", \
     'fl_accuracy_per_round.dat' index 7 with linespoints pt 7 title "stadam\\_cpu\\_stadam (mixed test images)", \
     'fl_accuracy_per_round.dat' index 8 with linespoints pt 7 title "stadam\\_cpu\\_stadam\\_mu0.9", \
     'fl_accuracy_per_round.dat' index 9 with linespoints pt 7 title "stadam\\_cpu\\_stadam\\_mu0.9 (mixed test images)", \
     'fl_accuracy_per_round.dat' index 10 with linespoints pt 7 title "stadam\\_cpu\\_stadam\\_mu0.9\\_lr1e-4", \
     'fl_accuracy_per_round.dat' index 11 with linespoints pt 7 title "stadam\\_cpu\\_stadam\\_mu0.9\\_lr1e-4 (mixed test images)", \
     'fl_accuracy_per_round.dat' index 12 with linespoints pt 7 title "stadam\\_full\\_adam", \
     'fl_accuracy_per_round.dat' index 13 with linespoints pt 7 title "stadam\\_full\\_adam (mixed test images)", \
     'fl_accuracy_per_round.dat' index 14 with linespoints pt 7 title "stadam\\_full\\_adam\\_lr3e-3", \
     'fl_accuracy_per_round.dat' index 15 with linespoints pt 7 title "stadam\\_full\\_adam\\_lr3e-3 (mixed test images)", \
     'fl_accuracy_per_round.dat' index 16 with linespoints pt 7 title "stadam\\_full\\_sgd", \
     'fl_accuracy_per_round.dat' index 17 with linespoints pt 7 title "stadam\\_full\\_sgd (mixed test images)", \
     'fl_accuracy_per_round.dat' index 18 with linespoints pt 7 title "stadam\\_full\\_stadam", \
     'fl_accuracy_per_round.dat' index 19 with linespoints pt 7 title "stadam\\_full\\_stadam (mixed test images)", \
     'fl_accuracy_per_round.dat' index 20 with linespoints pt 7 title "stadam\\_full\\_stadam\\_mu0.9", \
     'fl_accuracy_per_round.dat' index 21 with linespoints pt 7 title "stadam\\_full\\_stadam\\_mu0.9 (mixed test images)", \
     'fl_accuracy_per_round.dat' index 22 with linespoints pt 7 title "stadam\\_full\\_stadam\\_mu0.9\\_lr1e-4", \
     'fl_accuracy_per_round.dat' index 23 with linespoints pt 7 title "stadam\\_full\\_stadam\\_mu0.9\\_lr1e-4 (mixed test images)"
