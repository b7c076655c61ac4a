set terminal png size 900,500
set output 'accuracy.png'
set title 'Colored MNIST, Dirichlet(0.5), 100 clients, 10 per round'
set xlabel 'round'
set ylabel 'test accuracy'
set key bottom right
set key noenhance
plot 'accuracy.dat' using 1:2 with linespoints title 'fedavg', 'accuracy.dat' using 1:3 with linespoints title 'fedprox', 'accuracy.dat' using 1:4 with linespoints title 'fedavgm', 'accuracy.dat' using 1:5 with linespoints title 'fedadam', 'accuracy.dat' using 1:6 with linespoints title 'fedyogi', 'accuracy.dat' using 1:7 with linespoints title 'fedadagrad', 'accuracy.dat' using 1:8 with linespoints title 'fednova', 'accuracy.dat' using 1:9 with linespoints title 'scaffold'
