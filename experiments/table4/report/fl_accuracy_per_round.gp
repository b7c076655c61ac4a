# fl_accuracy_per_round: made by fedvim report; run `gnuplot fl_accuracy_per_round.gp` in this folder to redraw fl_accuracy_per_round.png
set terminal png size 900,600
set output 'fl_accuracy_per_round.png'
set title "Test accuracy per round (fedvim run)"
set xlabel "round"
set ylabel "test accuracy"
set grid
set key outside right
set yrange [0:1]
plot 'fl_accuracy_per_round.dat' index 0 with linespoints pt 7 title "cmnist\\_lenet5\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 1 with linespoints pt 7 title "cmnist\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 2 with linespoints pt 7 title "cmnist\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 3 with linespoints pt 7 title "cmnist\\_lenet5\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 4 with linespoints pt 7 title "cmnist\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 5 with linespoints pt 7 title "cmnist\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 6 with linespoints pt 7 title "fashion\\_lenet5\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 7 with linespoints pt 7 title "fashion\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 8 with linespoints pt 7 title "fashion\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 9 with linespoints pt 7 title "fashion\\_lenet5\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 10 with linespoints pt 7 title "fashion\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 11 with linespoints pt 7 title "fashion\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 12 with linespoints pt 7 title "mnist\\_lenet5\\_dirichlet\\_plain", \
     'fl_accuracy_per_round.dat' index 13 with linespoints pt 7 title "mnist\\_lenet5\\_dirichlet\\_vmix", \
     'fl_accuracy_per_round.dat' index 14 with linespoints pt 7 title "mnist\\_lenet5\\_dirichlet\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 15 with linespoints pt 7 title "mnist\\_lenet5\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 16 with linespoints pt 7 title "mnist\\_lenet5\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 17 with linespoints pt 7 title "mnist\\_lenet5\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 18 with linespoints pt 7 title "mnist\\_mobilenet\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 19 with linespoints pt 7 title "mnist\\_mobilenet\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 20 with linespoints pt 7 title "mnist\\_mobilenet\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 21 with linespoints pt 7 title "mnist\\_resnet20\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 22 with linespoints pt 7 title "mnist\\_resnet20\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 23 with linespoints pt 7 title "mnist\\_resnet20\\_iid\\_vmix (mixed test images)", \
     'fl_accuracy_per_round.dat' index 24 with linespoints pt 7 title "mnist\\_vgg11\\_iid\\_plain", \
     'fl_accuracy_per_round.dat' index 25 with linespoints pt 7 title "mnist\\_vgg11\\_iid\\_vmix", \
     'fl_accuracy_per_round.dat' index 26 with linespoints pt 7 title "mnist\\_vgg11\\_iid\\_vmix (mixed test images)"
